"""Memory planning: how much a job needs at its peak, whether that fits, and what would.

The estimate is a model of what autograd keeps alive, calibrated against
measured peaks (benchmarks/memory_calibration.py): for each level of the
pyramid, the activations of every layer up to the deepest one the job uses
(kept for the backward pass), the optimiser's state for the image (as much
L-BFGS history as the level's iterations can fill), the loss targets and the
network's weights.  The level with the largest of these peaks decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from engine.layers import CHANNELS, CONV_PARAMETERS, STRIDE, VGG19_LAYERS
from engine.params import Optimizer, Pooling, Precision, StyleParams
from engine.plan import level_sizes
from engine.tiles import TILE_MARGIN

log = logging.getLogger(__name__)

MiB = 1024**2
GiB = 1024**3

# Calibration (benchmarks/memory_calibration.py, CPU, float32, Adam so that no L-BFGS history
# hides in the slope; 256/512/1024 px on 4:3 images): the measured peak grew by 2.28 KiB per
# pixel, 1.7 times the analytic sum of kept activations (autograd also keeps the conv inputs'
# gradients and the allocator's slack), on top of ~1.1 GiB of PyTorch runtime, images and weight
# unpacking.  Measured again with the network's precision and layout (freed memory given back,
# torch 2.14, 2-core Xeon): float32 contiguous 1254 / 1597 / 2915 MiB, float32 channels-last
# 1272 / 1639 / 3104, bfloat16 channels-last 1184 / 1527 / 2710; this model says 1253 / 1572 /
# 2847, 1276 / 1663 / 3213 and 1222 / 1522 / 2723 (loss_copy_bytes is the difference the layout
# and precision make besides the activations' own size).  On CUDA the context lives outside the
# allocator; cuDNN's workspace is the overhead there (not yet measured on a GPU).
ACTIVATION_FACTOR = 1.7
RUNTIME_OVERHEAD = {"cpu": 1090 * MiB, "cuda": 512 * MiB, "mps": 512 * MiB}
# Leave this share of the free memory unused: fragmentation and other programs.
HEADROOM = 0.85


def _dtype_bytes(precision: Precision) -> int:
    """Bytes per number; AUTO counts as float32 unless the caller resolved it (plan_memory does)."""
    return 4 if precision in (Precision.FLOAT32, Precision.AUTO) else 2


def activation_bytes(width: int, height: int, last_layer: str, precision: Precision, pooling: Pooling) -> int:
    """Bytes of the activations autograd keeps for one forward/backward pass.

    In reduced precision conv1_1 stays float32 (engine.run.network) and its output is kept once
    more as the next convolution's reduced-precision input.
    """
    size = _dtype_bytes(precision)
    total = 0
    for name in VGG19_LAYERS[: VGG19_LAYERS.index(last_layer) + 1]:
        stride = STRIDE[name]
        positions = (height // stride or 1) * (width // stride or 1)
        if name.startswith("conv") or name.startswith("pool"):
            total += CHANNELS[name] * positions * (4 if name == "conv1_1" else size)
            if name == "conv1_1" and size < 4:
                total += CHANNELS[name] * positions * size
            if name.startswith("pool") and pooling is Pooling.MAX:
                total += CHANNELS[name] * positions * 8  # int64 argmax indices
    return total


def loss_copy_bytes(
    width: int, height: int, params: StyleParams, precision: Precision, channels_last: bool
) -> int:
    """Bytes of the float32 copies the losses keep for the backward pass (engine.losses).

    A Gram matrix flattens its layer to (channels, positions): a copy when the layer is
    channels-last or not float32. A content term computes in float32: a copy when it is not.
    Measured (benchmarks/memory_calibration.py, Adam, 512 -> 1024 px): float32 channels-last grew
    2.54 KiB per pixel against contiguous float32's 2.29; these copies are 0.48 KiB of it.
    """
    reduced = _dtype_bytes(precision) < 4
    total = 0
    for names, copied in (
        ({n for n, _ in params.active_style_layers}, channels_last or reduced),
        ({n for n, _ in params.active_content_layers}, reduced),
    ):
        for name in names if copied else ():
            stride = STRIDE[name]
            total += CHANNELS[name] * (height // stride or 1) * (width // stride or 1) * 4
    return total


def weight_bytes(last_layer: str, precision: Precision) -> int:
    convs = [n for n in VGG19_LAYERS[: VGG19_LAYERS.index(last_layer) + 1] if n.startswith("conv")]
    return sum(CONV_PARAMETERS[n] for n in convs) * _dtype_bytes(precision)


def optimizer_bytes(width: int, height: int, params: StyleParams, tiled: bool, iterations: int) -> int:
    pixels = 3 * width * height * 4
    # The image, its gradient, and the copy kept as the last good image.
    base = 3 * pixels
    if tiled or params.optimizer is Optimizer.ADAM:
        return base + 2 * pixels
    # L-BFGS keeps two vectors per remembered step plus a handful of work vectors. A level remembers
    # at most one step per iteration after its first, so a short top level of a print-size pyramid
    # never fills a long history (2048 px, 10 iterations: the full history of 50 would add 3 GiB).
    remembered = min(params.lbfgs_history, max(0, iterations - 1))
    return base + (2 * remembered + 4) * pixels


def _levels(params: StyleParams, content_size: tuple[int, int]) -> list[tuple[tuple[int, int], int]]:
    return list(level_sizes(content_size, params))


def estimate_peak_bytes(
    params: StyleParams,
    content_size: tuple[int, int],
    device_type: str = "cpu",
    network: Precision | None = None,
    channels_last: bool = False,
) -> int:
    """Peak memory of the job on a device of this type: the largest of its pyramid levels' peaks.

    ``network`` is the precision the network will run in (``params.precision`` resolved on the
    device, engine.device.network_setup); None counts ``params.precision`` as it is, AUTO as float32.
    ``channels_last``: the network's layout (network_setup's choice).
    """
    precision = network if network is not None and params.precision is Precision.AUTO else params.precision
    return max(
        _level_peak_bytes(params, size, iterations, device_type, precision, channels_last)
        for size, iterations in _levels(params, content_size)
    )


def _level_peak_bytes(
    params: StyleParams,
    size: tuple[int, int],
    iterations: int,
    device_type: str,
    precision: Precision,
    channels_last: bool,
) -> int:
    width, height = size
    last = params.deepest_layer
    tiled = params.tile_size > 0 and max(width, height) > params.tile_size
    if tiled:
        crop = params.tile_size + 2 * TILE_MARGIN
        active_w, active_h = min(width, crop), min(height, crop)
    else:
        active_w, active_h = width, height
    activations = activation_bytes(active_w, active_h, last, precision, params.pooling)
    copies = loss_copy_bytes(active_w, active_h, params, precision, channels_last)
    # Content targets (float32) for the content layers. Tiled runs keep the whole-image maps in host
    # memory and move one tile's window at a time to the device.
    target_w, target_h = (width, height) if device_type == "cpu" else (active_w, active_h)
    targets = sum(
        CHANNELS[n] * (target_h // STRIDE[n] or 1) * (target_w // STRIDE[n] or 1) * 4
        for n, _ in params.active_content_layers
    )
    grams = sum(CHANNELS[n] ** 2 * 4 * 3 for n, _ in params.active_style_layers)
    total = (
        ACTIVATION_FACTOR * activations
        + copies
        + targets
        + grams
        + optimizer_bytes(width, height, params, tiled, iterations)
        + weight_bytes(last, precision)
        + RUNTIME_OVERHEAD.get(device_type, 0)
    )
    return int(total)


@dataclass(frozen=True)
class MemoryPlan:
    estimate: int  # bytes at the peak
    available: int  # bytes usable on the device now
    fits: bool
    # When it does not fit: a parameter change that would, in words, and the changed parameters.
    suggestion: str = ""
    suggested: StyleParams | None = None
    # How the network will run, in words ("bfloat16, channels-last"; engine.device.network_setup).
    network: str = ""

    def describe(self) -> str:
        text = f"needs about {self.estimate / GiB:.1f} GiB of {self.available / GiB:.1f} GiB available: " + (
            "fits" if self.fits else "does NOT fit"
        )
        return text + (f"; {self.suggestion}" if self.suggestion else "")


def smaller_alternatives(params: StyleParams, device_type: str) -> list[tuple[str, StyleParams]]:
    """Changes that shrink the footprint, gentlest first: what the fallback ladder tries too."""
    options: list[tuple[str, StyleParams]] = []
    if params.optimizer is Optimizer.LBFGS and params.lbfgs_history > 5:
        options.append(("remember fewer L-BFGS steps (history 5)", params.replace(lbfgs_history=5)))
    if params.optimizer is Optimizer.LBFGS:
        options.append(
            ("use Adam instead of L-BFGS", params.replace(optimizer=Optimizer.ADAM, learning_rate=0.02))
        )
    if device_type == "cuda" and params.precision in (Precision.AUTO, Precision.FLOAT32):
        options.append(("run the network in bfloat16", params.replace(precision=Precision.BFLOAT16)))
    for tile in (2048, 1024, 512, 256):
        if (params.tile_size == 0 or params.tile_size > tile) and params.size > tile:
            options.append(
                (
                    f"optimise in overlapping {tile} px tiles",
                    params.replace(tile_size=tile, optimizer=Optimizer.ADAM),
                )
            )
    return options


def plan_memory(
    params: StyleParams,
    content_size: tuple[int, int],
    device: Any,
    available: int | None = None,
) -> MemoryPlan:
    """Whether a job fits on ``device`` (a torch.device or its type, "cpu", "cuda", "mps").

    ``available`` is the free memory in bytes; by default it is asked of the device.
    """
    device_type = str(getattr(device, "type", device)).split(":")[0]
    import torch  # the device's choices need torch: only when a device is asked

    from engine.device import available_bytes, network_setup

    if available is None:
        available = available_bytes(device)
    setup = network_setup(params.precision, torch.device(device_type))
    free = available
    budget = int(free * HEADROOM)

    def estimate_of(changed: StyleParams) -> int:
        return estimate_peak_bytes(changed, content_size, device_type, setup.precision, setup.channels_last)

    estimate = estimate_of(params)
    network = setup.describe()
    if estimate <= budget:
        return MemoryPlan(estimate, free, True, network=network)
    for words, changed in smaller_alternatives(params, device_type):
        if estimate_of(changed) <= budget:
            return MemoryPlan(estimate, free, False, f"it would fit if you {words}", changed, network)
    for size in (4096, 2048, 1024, 512, 256):
        smaller = replace(params, size=min(params.size, size))
        if size < params.size and estimate_of(smaller) <= budget:
            return MemoryPlan(estimate, free, False, f"it would fit at {size} px", smaller, network)
    return MemoryPlan(estimate, free, False, "even the smallest plan does not fit", network=network)
