"""Are bfloat16 pictures as good as float32's? The same jobs in both precisions, judged in float32.

    .venv/bin/python benchmarks/precision_quality.py                  # 4 pairs at 512 px, default preset
    .venv/bin/python benchmarks/precision_quality.py --pairs tubingen:starry_night --variants all
    .venv/bin/python benchmarks/precision_quality.py --size 256 --variants float32,bfloat16,bfloat16-finish5

For every photo/painting pair, the default preset runs once with ``precision=float32`` (the old
path: float32, contiguous) and once with ``precision=bfloat16`` (the network in bfloat16 with
conv1_1 in float32, channels-last; Gram matrices, losses and L-BFGS in float32). Both final
pictures are then scored by one float32 network with the final level's own objective, so the
comparison does not depend on the precision a run measured its own loss in: the goal is a
bfloat16 total within 1 % of float32's (or lower). ``--variants all`` adds a run whose first
convolution is bfloat16 too (engine.run.network.FLOAT32_LAYERS = 0), to measure what keeping it
float32 buys, and one in ``auto`` (float32 channels-last where bfloat16 does not pay: the same
arithmetic summed in another order, which shows how far two float32 runs drift apart).
``bfloat16`` runs without the float32 finish (engine.device.FLOAT32_FINISH_ITERATIONS = 0);
``bfloat16-finish`` is what the engine runs (its last iterations with the float32 network, the same
L-BFGS history), and ``bfloat16-finishN`` the same with the last N iterations in float32.

Results: JSON lines in ``benchmarks/results/precision-quality-<timestamp>.json`` (machine, one line
per run, one summary per pair), the pictures beside it, and a side-by-side crop at 100 % (float32 |
bfloat16 | the difference x8) of the first pair in ``--crop-out``
(docs/images/bf16-vs-f32-crop.png).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"
DEFAULT_PAIRS = (
    "tubingen:starry_night,tubingen:the_scream,hoovertowernight:shipwreck,hoovertowernight:seated-nude"
)
# Precision, how many first layers stay float32, and the float32 finish (None: the engine's own).
VARIANTS: dict[str, tuple[str, int, int | None]] = {
    "float32": ("float32", 1, 0),
    "bfloat16": ("bfloat16", 1, 0),  # without the float32 finish
    "bfloat16-finish": ("bfloat16", 1, None),  # what the engine runs
    "bfloat16-all": ("bfloat16", 0, 0),  # conv1_1 in bfloat16 too
    # What auto runs here; on a CPU where that is float32 channels-last, it differs from float32 only
    # in the order of the sums: the spread of the optimisation itself, the noise floor of the test.
    "auto": ("auto", 1, None),
}


def variant_setup(variant: str) -> tuple[str, int, int | None]:
    """A variant's precision, float32 first layers and finish; ``bfloat16-finishN``: N in float32."""
    if variant in VARIANTS:
        return VARIANTS[variant]
    prefix = "bfloat16-finish"
    if variant.startswith(prefix) and variant[len(prefix) :].isdigit():
        return ("bfloat16", 1, int(variant[len(prefix) :]))
    raise SystemExit(f"unknown variant {variant!r}: {', '.join(VARIANTS)} or bfloat16-finishN")


def image_path(stem: str) -> Path:
    matches = sorted(IMAGES.glob(f"{stem}.*"))
    if not matches:
        raise SystemExit(f"{IMAGES / stem}.*: no such image")
    return matches[0]


def machine() -> dict[str, Any]:
    import torch

    from engine.device import cpu_bfloat16_speedup, cpu_has_bfloat16

    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "kind": "machine",
        "time": datetime.datetime.now().astimezone().isoformat(),
        "cpu": model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_has_bfloat16": cpu_has_bfloat16(),
        "bfloat16_conv_speedup": round(cpu_bfloat16_speedup(), 3),
    }


def run(content: Path, style: Path, params: Any, variant: str) -> tuple[Any, list[float]]:
    """One complete run; returns the Finished record and the elapsed time of every iteration."""
    from engine import device
    from engine.params import StyleJob
    from engine.records import Finished
    from engine.run import network
    from engine.stylize import RunOptions, stylize

    precision, float32_layers, finish = variant_setup(variant)
    engine_finish = device.FLOAT32_FINISH_ITERATIONS
    network.FLOAT32_LAYERS = float32_layers
    device.FLOAT32_FINISH_ITERATIONS = engine_finish if finish is None else finish
    job = StyleJob(content, (style,), params.replace(precision=precision))
    elapsed: list[float] = []
    try:
        for record in stylize(job, options=RunOptions(preview_interval=float("inf"))):
            if isinstance(record, Finished):
                return record, elapsed
            elapsed.append(record.elapsed)
    finally:
        network.FLOAT32_LAYERS = 1
        device.FLOAT32_FINISH_ITERATIONS = engine_finish
    raise RuntimeError("the run ended without a result")


def float32_scores(content: Path, style: Path, params: Any, pictures: dict[str, np.ndarray]) -> dict:
    """Each picture's loss terms under the final level's objective, computed by a float32 network."""
    import torch

    from engine.imageio import load_image
    from engine.plan import level_sizes, plan_levels
    from engine.run.network import Network
    from engine.run.targets import content_features, make_loss, style_targets, style_terms
    from engine.run.tensors import to_tensor
    from engine.weights import load_weights

    cpu = torch.device("cpu")
    net = Network.build(load_weights(params.weights), params, cpu, torch.float32, channels_last=False)
    photo, painting = load_image(content), load_image(style)
    level = plan_levels(params)[-1]
    size, _ = level_sizes(photo.size, params)[-1]
    targets = style_targets(net, [painting], [1.0], params, level.size)
    loss_fn = make_loss(net, params, content_features(net, photo, params, size), style_terms(targets, params))
    scores = {}
    with torch.no_grad():
        for name, picture in pictures.items():
            x = to_tensor(picture)
            assert (x.shape[-1], x.shape[-2]) == size, (x.shape, size)
            total, terms = loss_fn(net(x), x)
            scores[name] = {"total": float(total)} | {k: float(v) for k, v in terms.items()}
    return scores


def crop_sheet(pictures: dict[str, np.ndarray], out: Path, box: int = 256) -> Path:
    """float32 | bfloat16 | |difference| x8, a ``box`` px crop at 100 % from the busiest region."""
    reference, other = pictures["float32"], pictures["bfloat16"]
    height, width = reference.shape[:2]
    box = min(box, height, width)
    # The crop with the most detail (largest mean gradient) shows differences best.
    grey = reference.mean(-1)
    detail = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    best, where = -1.0, (0, 0)
    for top in range(0, height - box + 1, max(1, box // 4)):
        for left in range(0, width - box + 1, max(1, box // 4)):
            score = float(detail[top : top + box, left : left + box].mean())
            if score > best:
                best, where = score, (top, left)
    top, left = where
    tiles = [reference, other, np.clip(np.abs(reference - other) * 8, 0, 1)]
    labels = ["float32", "bfloat16", "|difference| x 8"]
    caption = 18
    sheet = Image.new("RGB", (3 * box + 2 * 8, box + caption), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        crop = (tile[top : top + box, left : left + box] * 255 + 0.5).astype(np.uint8)
        sheet.paste(Image.fromarray(crop), (index * (box + 8), caption))
        draw.text((index * (box + 8) + 4, 3), label, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="photo:painting stems, comma-separated")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--levels", default="", help="e.g. 256:60,512:30 (default: the preset's own)")
    parser.add_argument(
        "--variants",
        default="float32,bfloat16,bfloat16-finish",
        help="float32,bfloat16,bfloat16-finish[,bfloat16-finishN,bfloat16-all,auto]; all",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--crop-out", type=Path, default=ROOT / "docs" / "images" / "bf16-vs-f32-crop.png")
    args = parser.parse_args()

    from engine.presets import get_preset

    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    for variant in variants:
        variant_setup(variant)  # an unknown name fails before the first run
    params = get_preset(args.preset).params.replace(size=args.size, device="cpu")
    if args.levels:
        levels = tuple(tuple(int(v) for v in pair.split(":")) for pair in args.levels.split(","))
        params = params.replace(levels=levels, iterations=sum(n for _, n in levels))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "benchmarks" / "results" / f"precision-quality-{stamp}.json"
    pictures_dir = out.with_suffix("")
    pictures_dir.mkdir(parents=True, exist_ok=True)

    def emit(line: dict[str, Any]) -> None:
        with out.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)

    emit(machine())
    rows = []
    for index, pair in enumerate(args.pairs.split(",")):
        photo_stem, painting_stem = pair.split(":")
        content, style = image_path(photo_stem), image_path(painting_stem)
        pictures: dict[str, np.ndarray] = {}
        for variant in variants:
            started = time.process_time()
            finished, elapsed = run(content, style, params, variant)
            pictures[variant] = np.asarray(finished.image, dtype=np.float32)
            name = pictures_dir / f"{photo_stem}-{painting_stem}-{variant}.png"
            Image.fromarray((pictures[variant] * 255 + 0.5).astype(np.uint8)).save(name)
            emit(
                {
                    "kind": "run", "pair": pair, "variant": variant, "seconds": round(finished.seconds, 2),
                    "cpu_seconds": round(time.process_time() - started, 2), "iterations": finished.iterations,
                    "reason": finished.reason.value, "own_losses": dict(finished.losses),
                    "network": finished.extra.get("network"), "device": finished.device,
                    "first_progress_s": round(elapsed[0], 3) if elapsed else None, "picture": str(name),
                }
            )  # fmt: skip
        scores = float32_scores(content, style, params, pictures)
        reference = scores["float32"]["total"]
        summary = {
            "kind": "pair",
            "pair": pair,
            "float32_scores": scores,
            "total_ratio_to_float32": {v: round(scores[v]["total"] / reference, 4) for v in scores},
            "max_pixel_difference": {
                v: round(float(np.abs(pictures[v] - pictures["float32"]).max()), 4) for v in pictures
            },
            "mean_pixel_difference": {
                v: round(float(np.abs(pictures[v] - pictures["float32"]).mean()), 5) for v in pictures
            },
        }
        emit(summary)
        rows.append(summary)
        if index == 0 and "bfloat16" in pictures and "float32" in pictures:
            print(f"crop: {crop_sheet(pictures, args.crop_out)}", flush=True)
    others = [v for v in variants if v != "float32"]
    print(
        "\n| pair | " + " | ".join(f"{v} total (float32-scored)" for v in variants) + " | "
        + " | ".join(f"{v} / float32" for v in others) + " |"
    )  # fmt: skip
    print("|---|" + "---|" * (len(variants) + len(others)))
    for row in rows:
        totals = " | ".join(f"{row['float32_scores'][v]['total']:.4f}" for v in variants)
        ratios = " | ".join(f"{row['total_ratio_to_float32'].get(v, float('nan')):.4f}" for v in others)
        print(f"| {row['pair']} | {totals} | {ratios} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
