"""Does a seed change a run that starts from the photo, and does the start noise change the look?

    .venv/bin/python benchmarks/seed_noise.py [--photo tubingen] [--painting starry_night] [--size 256]
        [--iterations 100] [--seeds 1,2,3]

Runs the default preset from the photo without start noise (engine.stylize.START_NOISE_LEVELS set to
0, as before the noise existed) with the first two seeds, and once per seed with it, in this process,
and reports each run's final losses and the mean and largest pixel difference (in levels of 255)
between the pictures: without noise every seed gives the same picture (unless the run itself is not
repeatable, which the first pair shows), so the difference between seeds is what the noise buys, and
the spread of the seeds' final losses is the noise against which the no-noise loss is judged.
Results go to benchmarks/results/seed-noise.json, the pictures side by side (no noise, then each seed)
to benchmarks/results/seed-noise.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def run(content: Path, style: Path, size: int, iterations: int, seed: int, levels: float) -> dict:
    import engine.stylize
    from engine.params import StyleJob
    from engine.presets import get_preset
    from engine.records import Finished

    engine.stylize.START_NOISE_LEVELS = levels
    params = get_preset("default").params.replace(
        size=size, iterations=iterations, coarse_to_fine=False, seed=seed, device="cpu"
    )
    started = time.perf_counter()
    for record in engine.stylize.stylize(StyleJob(content, (style,), params)):
        if isinstance(record, Finished):
            return {
                "seed": seed,
                "noise_levels": levels,
                "seconds": round(time.perf_counter() - started, 1),
                "losses": {k: round(v, 5) for k, v in record.losses.items()},
                "device": record.device,
                "image": record.image,
            }
    raise RuntimeError("no result")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photo", default="tubingen")
    parser.add_argument("--painting", default="starry_night")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "seed-noise.json")
    args = parser.parse_args()
    import engine.stylize

    levels = engine.stylize.START_NOISE_LEVELS
    content, style = IMAGES / f"{args.photo}.jpg", IMAGES / f"{args.painting}.jpg"
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [run(content, style, args.size, args.iterations, seeds[0], 0.0)]
    runs.append(run(content, style, args.size, args.iterations, seeds[1], 0.0))
    runs += [run(content, style, args.size, args.iterations, seed, levels) for seed in seeds]
    names = [f"no noise, seed {seeds[0]}", f"no noise, seed {seeds[1]}"]
    names += [f"noise {levels:g}, seed {seed}" for seed in seeds]
    differences = []
    for (name_a, a), (name_b, b) in itertools.combinations(zip(names, runs, strict=True), 2):
        delta = np.abs(a["image"] - b["image"]) * 255.0
        differences.append(
            {
                "a": name_a,
                "b": name_b,
                "mean_levels": round(float(delta.mean()), 3),
                "max_levels": round(float(delta.max()), 1),
            }  # fmt: skip
        )
        print(json.dumps(differences[-1]), flush=True)
    rows = [
        {"run": name, **{k: v for k, v in r.items() if k != "image"}}
        for name, r in zip(names, runs, strict=True)
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    report = {
        "photo": args.photo,
        "painting": args.painting,
        "size": args.size,
        "iterations": args.iterations,
        "runs": rows,
        "differences": differences,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    from PIL import Image

    strip = np.concatenate([runs[0]["image"], *(r["image"] for r in runs[2:])], axis=1)
    Image.fromarray((np.clip(strip, 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.out.with_suffix(".png"))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
