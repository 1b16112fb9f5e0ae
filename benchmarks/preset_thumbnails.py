"""Example thumbnails of every preset for the window's preset menu: resources/presets/<name>.png.

    .venv/bin/python benchmarks/preset_thumbnails.py [--size 96] [--max-iterations 100] [--device cpu]

Each preset paints the shared tubingen.jpg in the style of starry_night.jpg with its own recipe,
except two things changed to keep it quick: the long edge is ``--size`` (96 px) and the
iterations are capped at ``--max-iterations`` (100; presets asking for fewer keep theirs).  So a
thumbnail shows the preset's character, not its exact full-size result.  The PNG is the picture
at that size (96 px long edge).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"
OUT = ROOT / "resources" / "presets"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--max-iterations", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photo", default="tubingen")
    parser.add_argument("--painting", default="starry_night")
    parser.add_argument("--only", default="", help="comma-separated preset names (default: all)")
    args = parser.parse_args()

    from engine.params import StyleJob
    from engine.presets import PRESETS
    from engine.records import Finished
    from engine.stylize import stylize

    OUT.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or list(PRESETS)
    for name in names:
        recipe = PRESETS[name].params
        params = recipe.replace(
            size=args.size, iterations=min(recipe.iterations, args.max_iterations), device=args.device
        )
        job = StyleJob(IMAGES / f"{args.photo}.jpg", (IMAGES / f"{args.painting}.jpg",), params)
        started = time.perf_counter()
        finished = next(r for r in stylize(job) if isinstance(r, Finished))
        picture = Image.fromarray((np.clip(finished.image, 0, 1) * 255 + 0.5).astype(np.uint8))
        picture.thumbnail((args.size, args.size), Image.Resampling.LANCZOS)
        path = OUT / f"{name}.png"
        picture.save(path, optimize=True)
        print(
            f"{name}: {picture.size[0]}x{picture.size[1]}, {finished.iterations} iterations, "
            f"{time.perf_counter() - started:.1f} s -> {path.relative_to(ROOT)}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
