"""Seconds per iteration of the default preset at one size, in a fresh process (median after warm-up).

    .venv/bin/python benchmarks/iteration_speed.py --size 512 --iterations 12 [--set field=JSON ...]

Used to compare two versions of the engine on the same machine in one sitting (this machine's
speed varies between days, so only ratios measured together mean anything).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="change a parameter")
    args = parser.parse_args()
    changes = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}

    from engine.params import StyleJob, StyleParams
    from engine.records import Finished
    from engine.stylize import stylize

    params = StyleParams(size=args.size, iterations=args.iterations, coarse_to_fine=False, device="cpu")
    params = params.replace(**changes)
    job = StyleJob(IMAGES / "tubingen.jpg", (IMAGES / "starry_night.jpg",), params)
    started = time.perf_counter()
    stamps: list[float] = []
    first_record = None
    for record in stylize(job):
        if isinstance(record, Finished):
            break
        if first_record is None:
            first_record = time.perf_counter() - started
        stamps.append(record.elapsed)
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][args.warmup :]
    print(
        json.dumps(
            {
                "size": args.size,
                "changes": changes,
                "median_s_per_iter": round(statistics.median(steps), 4),
                "steps": [round(s, 3) for s in steps],
                "first_record_s": round(first_record or 0.0, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
