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


# The parameters the memory plan and the out-of-memory ladder change to make a level leaner.
LEAN_FIELDS = ("precision", "optimizer", "learning_rate", "lbfgs_history", "tile_size")


def is_leaner(params: StyleParams, than: StyleParams) -> bool:
    """Whether the memory plan or a fallback changed ``than``'s lean fields into ``params``."""
    return any(getattr(params, name) != getattr(than, name) for name in LEAN_FIELDS)


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
    # How many of the level's last iterations ran with the float32 network (run_level's finish).
    float32_finish: int = 0


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def level_params(
    params: StyleParams, level: Level, size: tuple[int, int], device: torch.device
) -> tuple[StyleParams, str]:
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
    level_ends: bool = True,
) -> Stepper:
    """The stepper this level's parameters call for, with its loss targets computed.

    Tiles keep no resumable state (their moments live per tile); a resumed tiled level goes on
    from the stopped image with fresh moments. ``level_ends`` False: a whole-image stepper ends
    with the state the level goes on from (the float32 finish)."""
    width, height = image.shape[-1], image.shape[-2]
    area = painted_area(inputs.regions, inputs.strengths, (width, height))  # None without regions
    if is_tiled(params, (width, height)):
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
    paused = {} if level_ends else {"level_ends": False}
    return steps(x, objective, params, iterations, inputs.control, first_iteration, resume, **paused)


def is_tiled(params: StyleParams, size: tuple[int, int]) -> bool:
    return params.tile_size > 0 and max(size) > params.tile_size


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
    float32_finish: int = 0,
) -> Generator[Step, None, LevelOutcome]:
    """Run one level from ``image`` (CPU), falling back to leaner settings when memory runs out.

    With ``resume`` the level goes on where a stopped run left it (``first_iteration`` is then the
    run-wide number of the first iteration still to do). ``float32_finish``: the level's last this
    many iterations run with the float32 network when it runs in reduced precision, continuing the
    same optimiser state; not where the memory plan or a fallback changed the level's settings
    (float32 needs more memory), nor in tiles (they keep no state to continue)."""
    size = (image.shape[-1], image.shape[-2])
    level_run, notice = level_params(params, level, size, network.device)
    pending = [notice] if notice else []
    if notice:
        log.warning(notice)
    network = network.with_dtype(network_dtype(level_run.precision, network.device))
    if network.dtype == torch.float32 or is_leaner(level_run, params) or is_tiled(level_run, size):
        float32_finish = 0
    switch = max(0, level.iterations - float32_finish)  # the level's iterations before the finish
    finishing_network: Network | None = None
    earlier = resume.done if resume is not None else 0
    in_float32 = max(0, earlier - switch) if float32_finish else 0  # finish iterations done
    done = 0
    tried: set[str] = set()
    fallbacks: list[str] = []
    kept = image
    carried = resume  # the optimiser state the next stepper goes on from
    while True:
        at = earlier + done  # iterations of the level done so far
        finishing = bool(float32_finish) and at >= switch
        count = level.iterations - at if finishing or not float32_finish else switch - at
        stepper: Stepper | None = None
        try:
            # Inside the try: the float32 network and its targets may be what does not fit.
            if finishing and finishing_network is None:
                finishing_network = network.with_dtype(torch.float32)
                log.info("the last %d iterations of the level in float32", level.iterations - switch)
            stepping = finishing_network if finishing and finishing_network is not None else network
            stepper = stepper_for(
                kept, stepping, level_run, inputs, level, count, first_iteration + done, params.seed + index,
                carried, level_ends=at + count == level.iterations,
            )  # fmt: skip
            carried = None
            with reuse_freed_memory(may_keep_freed_memory(level_run, size, network.device)):
                while True:
                    try:
                        step = next(stepper)
                    except StopIteration as finished:
                        end: LevelEnd = finished.value
                        break
                    done += 1
                    in_float32 += finishing
                    kept = step.kept
                    if pending:
                        notices = "; ".join(text for text in (*pending, step.notice) if text)
                        step = dataclasses.replace(step, notice=notices)
                        pending = []
                    yield step
            if end.message:
                log.warning(end.message)
            if (
                end.reason is StopReason.COMPLETED
                and earlier + done < level.iterations
                and end.state is not None
            ):
                carried = end.state  # the reduced-precision part is done: the finish goes on from here
                continue
            return LevelOutcome(end, level_run, network, tuple(fallbacks), in_float32)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
        del stepper
        if finishing:
            # The float32 finish needs more memory than the level's reduced precision: finish without
            # it, from the state it was to go on from if it had not begun, else from the last image.
            words = f"finish in {network.setup.precision.value} (float32 does not fit)"
            float32_finish, finishing_network = 0, None
            _free_memory(network.device)
        else:
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
                return LevelOutcome(end, level_run, network, tuple(fallbacks), in_float32)
            words, level_run = options[0]
            carried = None  # another optimiser or history length starts afresh from the last good image
            float32_finish = 0  # a leaner level does not go back to float32 for its end
            network = network.with_dtype(network_dtype(level_run.precision, network.device))
        tried.add(words)
        fallbacks.append(words)
        text = f"ran out of memory at {size[0]}x{size[1]}; continuing from the last image: {words}"
        log.warning(text)
        pending.append(text)


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
