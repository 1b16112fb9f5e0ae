"""What regions cost per iteration: the default preset's objective with and without masks.

    .venv/bin/python benchmarks/regions_speed.py --size 512 --out benchmarks/results/regions-speed-cpu.json

Tübingen with Starry Night, L-BFGS, one level at ``--size``. Four configurations: no masks; the
sky alone painted (one region, a third of the picture, the rest keeps the photo); sky and ground
(two regions sharing out the picture, Starry Night and The Scream); and three regions (the ground
split in two halves with two paintings). The sky mask is made here from the photo's colours (blue,
in the upper part, joined to the top edge), so nothing outside the repository and the shared
images is needed.

Two measurements, both interleaved across the configurations so that a busy machine slows them
all alike (this 2-core machine is shared): the objective's forward and backward pass (what an
L-BFGS iteration costs, its own bookkeeping aside), the median of ``--repeats`` in each of
``--rounds`` rounds; and, with ``--runs``, whole runs of ``--iterations`` iterations in a fresh
process each, median seconds per iteration after two of warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT.parent / "shared" / "images"
PHOTO, STARRY, SCREAM = IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg", IMAGES / "the_scream.jpg"


def sky_mask(folder: Path) -> dict[str, Path]:
    """Sky, ground and the ground's two halves as mask files (soft 2 px edges)."""
    from PIL import ImageFilter
    from scipy import ndimage

    pixels = np.asarray(Image.open(PHOTO).convert("RGB")).astype(np.float32)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    sky = (blue > 120) & (blue - red > 45) & (blue - green > 10)
    rows = np.arange(sky.shape[0])[:, None]
    sky &= rows < 0.62 * sky.shape[0]
    labels, _ = ndimage.label(sky)
    sky = np.isin(labels, [label for label in np.unique(labels[0]) if label])
    sky = ndimage.binary_fill_holes(ndimage.binary_closing(sky, iterations=3))
    sky = ndimage.binary_opening(sky, iterations=2)
    soft = np.asarray(Image.fromarray((sky * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)))
    ground = 255 - soft
    left, right = ground.copy(), ground.copy()
    left[:, ground.shape[1] // 2 :] = 0
    right[:, : ground.shape[1] // 2] = 0
    paths = {}
    for name, mask in (("sky", soft), ("ground", ground), ("left", left), ("right", right)):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(mask).save(paths[name])
    return paths


def configurations(masks: dict[str, Path]) -> dict[str, dict]:
    return {
        "no masks": {"styles": (STARRY,), "masks": ()},
        "sky only (1 region)": {"styles": (STARRY,), "masks": (masks["sky"],)},
        "sky and ground (2 regions)": {"styles": (STARRY, SCREAM), "masks": (masks["sky"], masks["ground"])},
        "three regions": {
            "styles": (STARRY, SCREAM, STARRY),
            "masks": (masks["sky"], masks["left"], masks["right"]),
        },
    }


def objective_times(configs: dict[str, dict], size: int, repeats: int, rounds: int) -> dict[str, list[float]]:
    import torch

    from engine.device import choose_device, network_dtype
    from engine.guided import level_style_terms
    from engine.imageio import load_image
    from engine.params import StyleJob, StyleParams
    from engine.plan import level_sizes
    from engine.run.network import Network
    from engine.run.targets import content_features, make_loss
    from engine.stylize import _coloured, _load_inputs
    from engine.weights import load_weights

    params = StyleParams(size=size, iterations=1, coarse_to_fine=False, device="cpu")
    device = choose_device(params.device).device
    weights = load_weights(params.weights)
    network = Network.build(weights, params, device, network_dtype(params.precision, device))
    objectives = {}
    for name, config in configs.items():
        job = StyleJob(PHOTO, config["styles"], params, masks=config["masks"])
        inputs = _coloured(_load_inputs(job, None), params)
        (width, height), _ = level_sizes(inputs.content.size, params)[0]
        # The terms a level of a run builds (engine.run.fallback.stepper_for), without the optimiser.
        terms = level_style_terms(
            network, inputs.styles, job.normalized_blend, inputs.regions, job.region_strengths, params, size,
            (width, height),
        )  # fmt: skip
        content = content_features(network, inputs.content, params, (width, height))
        loss = make_loss(network, params, content, terms)
        image = torch.from_numpy(np.ascontiguousarray(load_image(PHOTO).rgb)).permute(2, 0, 1)[None]
        image = torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear").contiguous()
        objectives[name] = (loss, image)
    wall: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (loss, image) in objectives.items():
            x = image.clone().requires_grad_(True)
            for _ in range(2):  # warm-up: the gathered positions, allocator
                total, _terms = loss(network(x), x)
                total.backward()
            for _ in range(repeats):
                x.grad = None
                started, started_cpu = time.perf_counter(), time.process_time()
                total, _terms = loss(network(x), x)
                total.backward()
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
    return {"wall": wall, "cpu": cpu}


def one_run(size: int, iterations: int, styles: list[str], masks: list[str]) -> float:
    """Median seconds per iteration of one whole run (this process), after two of warm-up."""
    from engine.params import StyleJob, StyleParams
    from engine.records import Finished
    from engine.stylize import stylize

    params = StyleParams(size=size, iterations=iterations, coarse_to_fine=False, device="cpu")
    job = StyleJob(PHOTO, tuple(map(Path, styles)), params, masks=tuple(map(Path, masks)))
    stamps = [record.elapsed for record in stylize(job) if not isinstance(record, Finished)]
    return statistics.median([b - a for a, b in zip(stamps, stamps[1:], strict=False)][2:])


def run_times(
    configs: dict[str, dict], size: int, iterations: int, rounds: int, threads: int
) -> dict[str, list[float]]:
    """Whole runs, each in a fresh process (this script with --one-run), interleaved."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, config in configs.items():
            spec = {"styles": [str(p) for p in config["styles"]], "masks": [str(p) for p in config["masks"]]}
            command = [
                sys.executable, __file__, "--size", str(size), "--iterations", str(iterations),
                "--threads", str(threads), "--one-run", json.dumps(spec),
            ]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            times[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return times


def summary(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per configuration: the fastest and the median evaluation, and each against no masks.

    On a shared machine the fastest is the better estimate of the work itself (other processes can
    only slow an evaluation down); CPU time (``process_time``, all threads) counts the work done
    whoever else runs, and wall time what a person waits.
    """
    base_min, base_median = min(times["no masks"]), statistics.median(times["no masks"])
    return {
        name: {
            "min_s": round(min(values), 4),
            "median_s": round(statistics.median(values), 4),
            "min_vs_no_masks": round(min(values) / base_min - 1.0, 4),
            "median_vs_no_masks": round(statistics.median(values) / base_median - 1.0, 4),
            "samples_s": [round(v, 4) for v in values],
        }
        for name, values in times.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", action="store_true", help="also time whole runs in fresh processes")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: its default); 1 keeps CPU time honest"
    )
    parser.add_argument("--one-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if args.threads:
        # With several threads, one waiting for another spins and counts CPU time, so on a busy
        # machine CPU time stops measuring the work; one thread does not.
        torch.set_num_threads(args.threads)
    if args.one_run:
        spec = json.loads(args.one_run)
        print(json.dumps(one_run(args.size, args.iterations, spec["styles"], spec["masks"])))
        return 0

    with tempfile.TemporaryDirectory(prefix="painterly-regions-") as folder:
        masks = sky_mask(Path(folder))
        configs = configurations(masks)
        result = {
            "benchmark": "regions_speed",
            "size": args.size,
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__,
            "sky_share": round(float(np.asarray(Image.open(masks["sky"])).mean() / 255), 3),
        }
        measured = objective_times(configs, args.size, args.repeats, args.rounds)
        result |= {
            "objective_wall": summary(measured["wall"]),
            "objective_cpu": summary(measured["cpu"]),
        }
        if args.runs:
            runs = run_times(configs, args.size, args.iterations, args.rounds, args.threads)
            result["run_s_per_iteration"] = summary(runs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
