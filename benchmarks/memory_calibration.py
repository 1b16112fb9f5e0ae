"""Measure the real peak memory of short runs and compare it with engine.memory's estimate.

    python benchmarks/memory_calibration.py [--sizes 256,512,768] [--device cpu] [--precision bfloat16]

Each size runs in a fresh process so the peak (VmHWM on Linux; max allocated on CUDA) is its own.
The estimate is of a run that gives freed memory back (engine.hostmemory's reuse off: the plan adds
REUSE_PEAK_FACTOR for that itself), so the runs here keep it off unless ``--heap-reuse``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, torch
sys.path.insert(0, {root!r})
from engine.params import StyleJob, StyleParams
from engine.stylize import stylize
import engine.run.fallback
if not {heap_reuse!r}:
    engine.run.fallback.may_keep_freed_memory = lambda *args: False
from engine.device import network_setup
from engine.memory import estimate_peak_bytes
params = StyleParams(size={size}, iterations=3, coarse_to_fine=False, device={device!r},
                     optimizer={optimizer!r}, tile_size={tile}, precision={precision!r})
job = StyleJob({content!r}, ({style!r},), params)
for record in stylize(job):
    pass
if {device!r} == "cuda":
    peak = torch.cuda.max_memory_allocated()
else:
    peak = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) * 1024
from PIL import Image
network = network_setup(params.precision, torch.device({device!r})).precision
estimate = estimate_peak_bytes(params, Image.open({content!r}).size, {device!r}, network)
result = {{"peak": peak, "estimate": estimate, "seconds": record.seconds, "network": record.extra["network"]}}
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256,512,768")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--tile", type=int, default=0)
    parser.add_argument("--precision", default="auto", help="auto, float32, bfloat16 (the network's)")
    parser.add_argument("--heap-reuse", action="store_true", help="let runs keep freed memory (hostmemory)")
    args = parser.parse_args()
    work = Path("/tmp/painterly-calibration")
    work.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    content, style = work / "content.png", work / "style.png"
    Image.fromarray(rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (640, 1024, 3), dtype=np.uint8)).save(style)
    print("| size | optimizer | tile | network | measured peak MiB | estimate MiB | ratio |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        code = CHILD.format(
            root=str(ROOT),
            size=size,
            device=args.device,
            optimizer=args.optimizer,
            tile=args.tile,
            precision=args.precision,
            heap_reuse=args.heap_reuse,
            content=str(content),
            style=str(style),
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {size} | {args.optimizer} | {args.tile} | {result['network']['precision']} | "
            f"{result['peak'] / 2**20:.0f} | "
            f"{result['estimate'] / 2**20:.0f} | {result['peak'] / result['estimate']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
