"""Does starting from the instant draft reach the default preset's final loss sooner?

    .venv/bin/python benchmarks/draft_start.py [--pairs tubingen:starry_night,...] [--size 512]

For each pair, the default preset runs twice in this process, from the photo and from the instant
draft (``--init draft``), recording the total loss against iterations and wall time; the report says
how many iterations and seconds the draft start needed to reach the photo start's final loss, and
saves both finished pictures side by side for looking at.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


Curve = list[tuple[int, float, float]]  # (iteration, seconds, total loss)


def run(content: Path, style: Path, size: int, init: str) -> tuple[Curve, np.ndarray]:
    from engine.params import InitMode, StyleJob
    from engine.presets import get_preset
    from engine.records import Finished
    from engine.stylize import stylize

    params = get_preset("default").params.replace(size=size, init=InitMode(init), device="cpu")
    curve: Curve = []
    for record in stylize(StyleJob(content, (style,), params)):
        if isinstance(record, Finished):
            return curve, record.image
        curve.append((record.iteration, round(record.elapsed, 3), round(record.losses["total"], 5)))
    raise RuntimeError("no result")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", default="tubingen:starry_night,hoovertowernight:the_scream")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "draft-start-cpu.json")
    args = parser.parse_args()
    report = []
    for pair in args.pairs.split(","):
        photo, painting = pair.split(":")
        content, style = IMAGES / f"{photo}.jpg", IMAGES / f"{painting}.jpg"
        curves, pictures = {}, []
        for init in ("content", "draft"):
            curves[init], picture = run(content, style, args.size, init)
            pictures.append(picture)
        target = curves["content"][-1][2]
        reached = next(((i, t) for i, t, loss in curves["draft"] if loss <= target), None)
        row = {
            "pair": pair,
            "size": args.size,
            "final_loss_from_photo": target,
            "final_loss_from_draft": curves["draft"][-1][2],
            "seconds_from_photo": curves["content"][-1][1],
            "seconds_from_draft": curves["draft"][-1][1],
            "draft_reaches_photo_final_at": (
                None if reached is None else {"iteration": reached[0], "seconds": reached[1]}
            ),
            "curves": curves,
        }
        report.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curves"}), flush=True)
        sheet = np.concatenate(pictures, axis=1)
        name = ROOT / "docs" / "images" / f"draft_start_{photo}_{painting}_{args.size}.png"
        Image.fromarray((np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)).save(name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
