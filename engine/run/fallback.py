"""One pyramid level: the memory plan picks how it runs, and the out-of-memory ladder keeps it going.

The plan may change a level's parameters before it starts (fewer L-BFGS steps remembered, Adam,
bfloat16, tiles). If the device still runs out of memory mid-level, the level continues from the
last image whose loss was known with the next, leaner option, until none is left.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.device import available_bytes, network_dtype
from engine.guided import gate_gradient, level_style_terms, painted_area
from engine.hostmemory import REUSE_PEAK_FACTOR, reuse_freed_memory
from engine.hostmemory import available as host_memory_reuse_available
from engine.imageio import LoadedImage
from engine.memory import HEADROOM, estimate_peak_bytes, plan_memory, smaller_alternatives
from engine.params import Optimizer, StyleParams
from engine.plan import Level
from engine.records import StopReason
from engine.regions import Regions
from engine.run.adam import adam_steps, tiled_adam_steps
from engine.run.lbfgs import lbfgs_steps
from engine.run.network import Network
from engine.run.steps import Control, LevelEnd, Step, Stepper, StepperState
from engine.run.targets import content_features, make_loss, stitched_features
from engine.run.tensors import resize, to_tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LevelInputs:
    """What every level of a run reads."""

    content: LoadedImage
    styles: Sequence[LoadedImage]
    blend: Sequence[float]
    control: Control
    # Where each style goes (engine.guided), and each region's strength (StyleJob.region_strengths).
    regions: Regions = Regions()
    strengths: Sequence[float] = ()


@dataclass(frozen=True)
class LevelOutcome:
    """A finished level, and what the next level must run with after any fallback."""

    end: LevelEnd
    params: StyleParams
    network: Network
    fallbacks: tuple[str, ...] = ()


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def level_params(params: StyleParams, level: Level, size: tuple[int, int], device: torch.device) -> tuple[
    StyleParams, str
]:
    """This level's parameters (the job's, changed only if the memory plan says they won't fit) and a
    notice for the user, empty when nothing needs saying."""
    # The level's own iteration count: it bounds how much L-BFGS history the plan reserves.
    at_level = params.replace(size=level.size, iterations=level.iterations, coarse_to_fine=False, levels=())
    plan = plan_memory(at_level, size, device)
    log.info("level %dx%d: %s", *size, plan.describe())
    if plan.fits or plan.suggested is None or plan.suggested.size != at_level.size:
        notice = "" if plan.fits else f"memory at {size[0]}x{size[1]}: {plan.describe()}; trying anyway"
        return at_level, notice
    return plan.suggested, f"memory at {size[0]}x{size[1]}: {plan.describe()}; doing that"


def may_keep_freed_memory(params: StyleParams, size: tuple[int, int], device: torch.device) -> bool:
    """On the CPU, keep freed activations for the next iteration (faster, see engine.hostmemory)
    when even the larger peak that costs fits in the free memory."""
    if device.type != "cpu" or not host_memory_reuse_available():
        return False
    needed = estimate_peak_bytes(params, size, "cpu") * REUSE_PEAK_FACTOR
    return needed <= available_bytes(device) * HEADROOM


def stepper_for(
    image: Tensor,
    network: Network,
    params: StyleParams,
    inputs: LevelInputs,
    level: Level,
    iterations: int,
    first_iteration: int,
    seed: int,
    resume: StepperState | None = None,
) -> Stepper:
    """The stepper this level's parameters call for, with its loss targets computed.

    Tiles keep no resumable state (their moments live per tile); a resumed tiled level goes on
    from the stopped image with fresh moments."""
    width, height = image.shape[-1], image.shape[-2]
    area = painted_area(inputs.regions, inputs.strengths, (width, height))  # None without regions
    if params.tile_size > 0 and max(width, height) > params.tile_size:
        tile = max(64, params.tile_size // 16 * 16)
        names = {name for name, _ in params.active_content_layers}
        content_maps = {}
        if names:
            content = resize(to_tensor(inputs.content.rgb), (width, height))
            content_maps = stitched_features(network, content, names, tile)
        terms = _style_terms(network, inputs, params, level, (width, height), tile)
        return tiled_adam_steps(
            image, network, params, content_maps, terms, iterations, inputs.control,
            first_iteration, seed, gate=area,
        )  # fmt: skip
    content = content_features(network, inputs.content, params, (width, height))
    terms = _style_terms(network, inputs, params, level, (width, height))
    loss_fn = make_loss(network, params, content, terms)

    def objective(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return loss_fn(network(x), x)

    x = network.prepare(image.detach().clone()).requires_grad_(True)
    if area is not None:
        gate = area.to(x.device)
        x.register_hook(lambda gradient: gate_gradient(gradient, gate))  # unpainted pixels stay
    steps = lbfgs_steps if params.optimizer is Optimizer.LBFGS else adam_steps
    return steps(x, objective, params, iterations, inputs.control, first_iteration, resume)


def _style_terms(
    network: Network,
    inputs: LevelInputs,
    params: StyleParams,
    level: Level,
    size: tuple[int, int],
    tile: int = 0,
) -> list[tuple[nn.Module, float]]:
    """The level's style terms: guided by the job's masks when it has any (engine.guided)."""
    return level_style_terms(
        network, inputs.styles, inputs.blend, inputs.regions, inputs.strengths, params, level.size, size, tile
    )


def run_level(
    image: Tensor,
    level: Level,
    index: int,
    params: StyleParams,
    network: Network,
    inputs: LevelInputs,
    first_iteration: int,
    resume: StepperState | None = None,
) -> Generator[Step, None, LevelOutcome]:
    """Run one level from ``image`` (CPU), falling back to leaner settings when memory runs out.

    With ``resume`` the level goes on where a stopped run left it (``first_iteration`` is then the
    run-wide number of the first iteration still to do)."""
    size = (image.shape[-1], image.shape[-2])
    level_run, notice = level_params(params, level, size, network.device)
    pending = [notice] if notice else []
    if notice:
        log.warning(notice)
    network = network.with_dtype(network_dtype(level_run.precision, network.device))
    earlier = resume.done if resume is not None else 0
    done = 0
    tried: set[str] = set()
    fallbacks: list[str] = []
    kept = image
    while True:
        stepper = stepper_for(
            kept, network, level_run, inputs, level, level.iterations - earlier - done,
            first_iteration + done, params.seed + index, None if done or fallbacks else resume,
        )  # fmt: skip
        try:
            with reuse_freed_memory(may_keep_freed_memory(level_run, size, network.device)):
                while True:
                    try:
                        step = next(stepper)
                    except StopIteration as finished:
                        end: LevelEnd = finished.value
                        if end.message:
                            log.warning(end.message)
                        return LevelOutcome(end, level_run, network, tuple(fallbacks))
                    done += 1
                    kept = step.kept
                    if pending:
                        notices = "; ".join(text for text in (*pending, step.notice) if text)
                        step = dataclasses.replace(step, notice=notices)
                        pending = []
                    yield step
        except Exception as error:
            if not is_out_of_memory(error):
                raise
        del stepper
        _free_memory(network.device)
        alternatives = smaller_alternatives(level_run, network.device.type)
        options = [(words, changed) for words, changed in alternatives if words not in tried]
        if not options:
            message = (
                f"out of memory at {size[0]}x{size[1]} even with every fallback; kept the last good "
                "image (try a smaller size)"
            )
            log.error(message)
            end = LevelEnd(kept, StopReason.OUT_OF_MEMORY, message)
            return LevelOutcome(end, level_run, network, tuple(fallbacks))
        words, level_run = options[0]
        tried.add(words)
        fallbacks.append(words)
        network = network.with_dtype(network_dtype(level_run.precision, network.device))
        text = f"ran out of memory at {size[0]}x{size[1]}; continuing from the last image: {words}"
        log.warning(text)
        pending.append(text)


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
