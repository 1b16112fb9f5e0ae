"""Does the Strength slider feel even? How far each strength moves the picture from the photo.

    .venv/bin/python benchmarks/strength_evenness.py --mode ratios [--size 256] [--pairs photo:painting,...]
    .venv/bin/python benchmarks/strength_evenness.py --mode strengths [--size 256] [--steps 8] [--preset P]

``ratios`` runs the default preset at strength 1 with its style weight multiplied by each ratio of a
grid (0 is the photo itself) and measures how far the picture has gone from the photo toward the
painting, three ways: its content error at relu4_2 (a perceptual distance from the photo), its mean
CIELAB colour difference from the photo (Delta E 1976), and how much of the style error it has removed
(log scale; Gram relu1_1..relu4_1), each as a fraction of the distance at ratio 1. The curve says which
weight ratio lies how far along: engine/params.py's strength mapping is read off it.

``strengths`` runs strengths 0, 1/steps, ..., 1 with the mapping as it is and reports the same
fractions and the step between neighbours: an even slider has equal steps.

Results: benchmarks/results/strength-evenness-MODE.json and a strip per pair (photo to painting,
left to right) next to it as PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
IMAGES = ROOT.parent / "shared" / "images"

RATIOS = (0.0, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..1) to CIELAB under D65."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = (
        linear
        @ np.array(
            [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float64
        ).T
    )
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _paint(preset: str, photo: Path, painting: Path, size: int, **changes: object) -> np.ndarray:
    from engine.params import StyleJob
    from engine.presets import get_preset
    from engine.records import Finished
    from engine.stylize import stylize

    params = get_preset(preset).params.replace(size=size, device="cpu", **changes)
    for record in stylize(StyleJob(photo, (painting,), params)):
        if isinstance(record, Finished):
            return np.clip(record.image, 0.0, 1.0)
    raise RuntimeError("the run ended without a picture")


def _distances(picture: np.ndarray, photo_rgb: np.ndarray, job) -> dict[str, float]:
    from contact_sheet import measure

    measured = measure(picture, job)
    return {
        "content": measured["content"],
        "style": measured["style_gram_relu1-4"],
        "delta_e": float(np.mean(np.linalg.norm(_lab(picture) - _lab(photo_rgb), axis=-1))),
    }


def _fractions(rows: list[dict]) -> None:
    """Each row's distances as a fraction of the way from the first row (strength or ratio 0: the
    photo for the optimisation, the photo's own style for the instant draft) to the last."""
    first, last = rows[0]["distances"], rows[-1]["distances"]
    for row in rows:
        d = row["distances"]
        toward = {
            name: round((d[name] - first[name]) / (last[name] - first[name]), 4)
            for name in ("content", "delta_e")
        }
        toward["style_removed"] = round(
            math.log(first["style"] / d["style"]) / math.log(first["style"] / last["style"]), 4
        )
        row["toward_painting"] = toward | {"mean": round(float(np.mean(list(toward.values()))), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("ratios", "strengths"), required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--preset", default="default", help="instant: the draft's strength (strengths only)")
    parser.add_argument(
        "--pairs", default="tubingen:starry_night,hoovertowernight:the_scream,tubingen:shipwreck"
    )
    args = parser.parse_args()
    if args.mode == "ratios" and args.preset != "default":
        parser.error("--mode ratios varies the default preset's style weight")

    from engine.imageio import load_image
    from engine.params import StyleJob
    from engine.presets import get_preset

    base_weight = get_preset("default").params.style_weight
    settings = (
        [{"ratio": r} for r in RATIOS]
        if args.mode == "ratios"
        else [{"strength": round(i / args.steps, 4)} for i in range(args.steps + 1)]
    )
    report: dict = {"mode": args.mode, "size": args.size, "pairs": []}
    strips = []
    for pair in args.pairs.split(","):
        photo_name, painting_name = pair.split(":")
        photo, painting = IMAGES / f"{photo_name}.jpg", IMAGES / f"{painting_name}.jpg"
        job = StyleJob(photo, (painting,), get_preset("default").params.replace(size=args.size, device="cpu"))
        photo_image = Image.fromarray((load_image(photo).rgb * 255 + 0.5).astype(np.uint8))
        rows, pictures = [], []
        for setting in settings:
            started = time.perf_counter()
            if args.mode == "ratios":  # ratio 0 is strength 0: the photo, as the slider's left end gives it
                changes = (
                    {"style_weight": base_weight * setting["ratio"]}
                    if setting["ratio"] > 0
                    else {"strength": 0.0}
                )
            else:
                changes = {"strength": setting["strength"]}
            picture = _paint(args.preset, photo, painting, args.size, **changes)
            height, width = picture.shape[:2]
            resized = photo_image.resize((width, height), Image.LANCZOS)
            photo_rgb = np.asarray(resized, dtype=np.float32) / 255.0
            rows.append({**setting, "seconds": round(time.perf_counter() - started, 1),
                         "distances": _distances(picture, photo_rgb, job)})  # fmt: skip
            pictures.append(picture)
            print(json.dumps({"pair": pair, **rows[-1]}), flush=True)
        _fractions(rows)
        if args.mode == "strengths":
            means = [row["toward_painting"]["mean"] for row in rows]
            steps = [round(b - a, 4) for a, b in zip(means, means[1:], strict=False)]
            report_steps = {
                "steps": steps,
                "largest_over_smallest": round(max(steps) / max(min(steps), 1e-4), 2),
            }
        else:
            report_steps = {}
        report["pairs"].append({"pair": pair, "rows": rows, **report_steps})
        height = min(p.shape[0] for p in pictures)
        strips.append(np.concatenate([p[:height] for p in pictures], axis=1))
        print(json.dumps(report["pairs"][-1]["rows"][-1]), json.dumps(report_steps), flush=True)
    out = (
        ROOT
        / "benchmarks"
        / "results"
        / f"strength-evenness-{args.mode}{'' if args.preset == 'default' else '-' + args.preset}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    width = min(s.shape[1] for s in strips)
    sheet = np.concatenate([s[:, :width] for s in strips], axis=0)
    Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).save(out.with_suffix(".png"))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
