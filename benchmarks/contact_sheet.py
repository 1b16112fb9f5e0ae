"""Contact sheets of a preset on the shared images, to judge the look by eye (and by loss).

    .venv/bin/python benchmarks/contact_sheet.py --name default-before [--preset default] [--size 512]
        [--photos tubingen,hoovertowernight] [--paintings seated-nude,the_scream,escher_sphere]
        [--set style_weight=10 ...]

Each photo x painting pair runs in this process; the sheet (photos down, paintings across, the
painting itself in the top row) goes to docs/images/contact-NAME.png at full resolution, and the
final losses, iterations and seconds to benchmarks/results/contact-NAME.json. Look at the sheet at
100 %: pasted faces or figures, seams, grey patches, blotches and halos are defects whatever the
loss says.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def measure(image: np.ndarray, job) -> dict[str, float]:
    """A picture's content error (relu4_2) and style errors (relu1_1..relu5_1, equal weights: Gatys'
    layers, fixed here whatever the default is; and relu1_1..relu4_1 alone) against the job's inputs
    at the picture's size, in our normalised convention, unweighted: one yardstick for every recipe."""
    import torch

    from engine.imageio import load_image
    from engine.params import StyleParams, StyleStatistic
    from engine.run.network import Network
    from engine.run.targets import content_features, make_loss, style_targets, style_terms
    from engine.run.tensors import to_tensor
    from engine.weights import load_weights

    height, width = image.shape[:2]
    content, painting = load_image(job.content), load_image(job.styles[0])
    picture = to_tensor(image)
    out: dict[str, float] = {}
    every = tuple((f"relu{block}_1", 1.0) for block in range(1, 6))
    for statistic, layers, suffix in (
        (StyleStatistic.GRAM, every, ""),
        (StyleStatistic.MEAN_COVARIANCE, every, ""),
        (StyleStatistic.GRAM, every[:4], "_relu1-4"),  # without relu5_1: the textures, not the objects
    ):
        params = StyleParams(style_statistic=statistic, style_weight=1.0, style_layers=layers, device="cpu")
        network = Network.build(load_weights("default"), params, torch.device("cpu"), torch.float32)
        targets = style_targets(network, [painting], (1.0,), params, max(width, height))
        loss = make_loss(network, params, content_features(network, content, params, (width, height)),
                         style_terms(targets, params))  # fmt: skip
        with torch.no_grad():
            _, terms = loss(network(network.prepare(picture)), picture)
        out["content"] = round(float(terms["content"]), 5)
        out[f"style_{statistic.value}{suffix}"] = round(float(terms["style"]), 5)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--photos", default="tubingen,hoovertowernight")
    parser.add_argument("--paintings", default="seated-nude,the_scream,escher_sphere")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()

    from engine.imageio import load_image, resize_long_edge
    from engine.params import StyleJob
    from engine.presets import get_preset
    from engine.records import Finished
    from engine.stylize import stylize

    changes = {key: _value(value) for key, value in (item.split("=", 1) for item in args.set)}
    params = get_preset(args.preset).params.replace(size=args.size, device="cpu", **changes)
    photos, paintings = args.photos.split(","), args.paintings.split(",")
    cell = args.size
    sheet = np.ones(((len(photos) + 1) * cell, (len(paintings) + 1) * cell, 3), dtype=np.float32)

    def place(image: np.ndarray, row: int, column: int) -> None:
        image = resize_long_edge(image, cell)
        height, width = image.shape[:2]
        top, left = row * cell + (cell - height) // 2, column * cell + (cell - width) // 2
        sheet[top : top + height, left : left + width] = image

    rows = []
    for column, painting in enumerate(paintings, start=1):
        place(load_image(IMAGES / f"{painting}.jpg").rgb, 0, column)
    for row, photo in enumerate(photos, start=1):
        place(load_image(IMAGES / f"{photo}.jpg").rgb, row, 0)
        for column, painting in enumerate(paintings, start=1):
            job = StyleJob(IMAGES / f"{photo}.jpg", (IMAGES / f"{painting}.jpg",), params)
            started = time.perf_counter()
            finished = next(r for r in stylize(job) if isinstance(r, Finished))
            seconds = round(time.perf_counter() - started, 1)
            place(finished.image, row, column)
            rows.append(
                {
                    "photo": photo,
                    "painting": painting,
                    "iterations": finished.iterations,
                    "seconds": seconds,
                    "losses": {k: round(v, 5) for k, v in finished.losses.items()},
                    # The same yardsticks for every recipe, so old and new defaults compare.
                    "measured": measure(finished.image, job),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    picture = ROOT / "docs" / "images" / f"contact-{args.name}.png"
    Image.fromarray((np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)).save(picture)
    report = {"name": args.name, "preset": args.preset, "changes": changes, "size": args.size, "rows": rows}
    results = ROOT / "benchmarks" / "results" / f"contact-{args.name}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=1) + "\n")
    print(picture)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
