"""Time to the first preview of a default run, in a fresh process; exits as soon as it arrives.

    .venv/bin/python benchmarks/first_preview.py --size 512                       # precision auto
    .venv/bin/python benchmarks/first_preview.py --size 512 --precision float32   # the old path

Prints one JSON line: seconds from the start of this process (Python and torch imports included)
to the first progress record with a preview, the engine's own clock (``Progress.elapsed``, from the
start of the job) and the process's CPU seconds. The process ends right after the preview, so its
wall time is the time to the first preview too: compare two variants in alternating fresh processes
(a shared machine's speed drifts).
"""

from __future__ import annotations

import time

STARTED, STARTED_CPU = time.perf_counter(), time.process_time()

import argparse  # noqa: E402 - the clock starts before anything is imported
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    from engine.params import StyleJob
    from engine.presets import get_preset
    from engine.stylize import stylize

    params = get_preset(args.preset).params.replace(size=args.size, device="cpu", precision=args.precision)
    job = StyleJob(IMAGES / "tubingen.jpg", (IMAGES / "starry_night.jpg",), params)
    imported = time.perf_counter() - STARTED
    for record in stylize(job):
        if getattr(record, "preview", None) is not None:
            result = {
                "size": args.size,
                "precision": args.precision,
                "process_to_first_preview_s": round(time.perf_counter() - STARTED, 3),
                "process_cpu_s": round(time.process_time() - STARTED_CPU, 3),
                "imports_s": round(imported, 3),
                "engine_elapsed_s": round(record.elapsed, 3),
                "iteration": record.iteration,
            }
            print(json.dumps(result), flush=True)
            return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
