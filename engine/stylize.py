"""The optimisation: a generator of progress records that ends with the result.

    for record in stylize(job, should_stop=flag.is_set):
        if isinstance(record, Finished): ...

The caller stops a run by making ``should_stop`` return True; it is polled
between iterations and inside the L-BFGS closure, so a stop takes effect
within one iteration and still ends with a ``Finished`` holding the last image.

This module is the level loop: it loads and checks the inputs, builds the
network, runs each pyramid level through engine.run.fallback and turns each
step into a ``Progress`` record. The parts it drives are in engine.run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine import colour
from engine.device import choose_device, network_dtype, network_setup
from engine.errors import InputError
from engine.guided import keep_photo_unpainted
from engine.imageio import LoadedImage, load_image
from engine.params import ColorMode, InitMode, Method, StyleJob, StyleParams
from engine.plan import check_output_shape, check_style_shape, level_sizes, output_size, plan_levels
from engine.records import Finished, Progress, Record, StopReason, to_uint8
from engine.regions import Regions, check_proportions, check_style_mask, composite, load_regions
from engine.resume import ResumePoint, job_key
from engine.run.fallback import LEAN_FIELDS, LevelInputs, is_leaner, is_out_of_memory, run_level
from engine.run.lbfgs import diverged, lbfgs_loss_scale
from engine.run.network import Network
from engine.run.steps import Control
from engine.run.tensors import resize, to_numpy, to_tensor
from engine.weights import VGGWeights, load_weights

log = logging.getLogger(__name__)

__all__ = ["RunOptions", "diverged", "is_out_of_memory", "lbfgs_loss_scale", "stylize"]


@dataclass(frozen=True)
class RunOptions:
    """How a run reports and lays out its work; none of it changes the picture."""

    # A preview image every this many seconds, and at every multiple of ``preview_every`` (0: none).
    preview_interval: float = 0.5
    preview_every: int = 0
    # Channels-last network: None is the engine's choice (engine.device.network_setup); benchmarks force it.
    channels_last: bool | None = None


@dataclass(frozen=True)
class _Inputs:
    content: LoadedImage
    styles: tuple[LoadedImage, ...]
    init: LoadedImage | None
    regions: Regions = Regions()

    def hashes(self) -> dict[str, str]:
        images = [self.content, *self.styles, *([self.init] if self.init is not None else [])]
        hashes = {str(image.path): image.sha256 for image in images if image.path is not None}
        return hashes | self.regions.hashes()


def _load_inputs(job: StyleJob, decoded: Mapping[Path, LoadedImage] | None) -> _Inputs:
    def load(path: str | Path) -> LoadedImage:
        already = (decoded or {}).get(Path(path))
        return already if already is not None else load_image(path)

    params = job.params
    content = load(job.content)
    check_output_shape(content.size, params, job.content)
    styles = tuple(load(path) for path in job.styles)
    for path, style in zip(job.styles, styles, strict=True):
        check_style_shape(style.size, path)
    init = load(params.init_image) if params.init is InitMode.IMAGE and params.init_image else None
    regions = load_regions(job.masks, job.style_masks, decoded)
    for mask in regions.masks:
        check_proportions(mask, content.size)
    for mask, style in zip(regions.style_masks, styles, strict=False):
        if mask is not None:
            check_style_mask(mask)
            check_proportions(mask, style.size, "style mask")
    return _Inputs(content, styles, init, regions)


def _coloured(inputs: _Inputs, params: StyleParams) -> _Inputs:
    """The inputs as the run sees them under the job's colour mode (engine.colour)."""
    content, styles = inputs.content, inputs.styles
    if params.colors is ColorMode.MATCH:
        styles = tuple(replace(s, rgb=colour.matched_colours(s.rgb, content.rgb)) for s in styles)
    elif params.colors is ColorMode.PHOTO and params.method is Method.OPTIMISE:
        styles = tuple(replace(s, rgb=colour.luminance_matched(s.rgb, content.rgb)) for s in styles)
        content = replace(content, rgb=colour.luminance(content.rgb))
    return _Inputs(content, styles, inputs.init, inputs.regions)


def _alpha_at(content: LoadedImage, size: tuple[int, int]) -> np.ndarray | None:
    """The photo's transparency at the result's size, or None when it has none."""
    if content.alpha is None:
        return None
    alpha = torch.from_numpy(content.alpha.astype(np.float32))[None, None]
    return resize(alpha, size)[0, 0].numpy()


def _finish_colours(image: np.ndarray, photo: LoadedImage, params: StyleParams) -> np.ndarray:
    """A picture of the run with the photo's chroma, as the colour mode and ``photo_colors`` ask."""
    if params.colors is ColorMode.PHOTO:
        image = colour.with_photo_chroma(image, photo.rgb, 1.0)
    return colour.with_photo_chroma(image, photo.rgb, params.photo_colors)


def instant_draft(inputs: _Inputs, params: StyleParams, blend: tuple[float, ...], size: tuple[int, int]):
    """The instant draft (engine.instant) of the inputs at ``size``, float32 H x W x 3.

    With regions, each painting is drafted alone and laid over the photo through its mask (its
    blend weight relative to the largest is its opacity there): the network has no notion of
    regions, and a linear mix of its pictures has no seam. A style mask narrows the painting to the
    part it selects (its bounding box: the style predictor sees a rectangle).
    """
    from engine import instant  # onnxruntime loads only for a job that uses it

    styles = [inputs.regions.cropped_style(index, style.rgb) for index, style in enumerate(inputs.styles)]
    weights = inputs.regions.weights(size)
    if weights is None:
        return instant.draft(inputs.content.rgb, styles, blend, size, params.strength, params.style_scale)
    strengths = [b / max(blend) for b in blend]
    pictures = [
        instant.draft(inputs.content.rgb, [rgb], (1.0,), size, params.strength, params.style_scale)
        for rgb in styles
    ]
    photo = to_numpy(resize(to_tensor(inputs.content.rgb), size))
    return composite(pictures, photo, weights, strengths)


def initial_image(inputs: _Inputs, params: StyleParams, size: tuple[int, int], blend=(1.0,)) -> Tensor:
    content = resize(to_tensor(inputs.content.rgb), size)
    if params.init is InitMode.DRAFT:
        draft = instant_draft(inputs, params, blend, size)
        return to_tensor(colour.luminance(draft) if params.colors is ColorMode.PHOTO else draft)
    if params.init is InitMode.IMAGE:
        assert inputs.init is not None
        return resize(to_tensor(inputs.init.rgb), size)
    if params.init is InitMode.NOISE:
        generator = torch.Generator().manual_seed(params.seed)
        noise = torch.rand(content.shape, generator=generator)
        return params.noise_ratio * noise + (1 - params.noise_ratio) * content
    levels = start_noise_levels(params)
    if levels:
        generator = torch.Generator().manual_seed(params.seed)
        noise = torch.rand(content.shape, generator=generator).mul_(2.0).sub_(1.0)
        return (content + noise * (levels / 255.0)).clamp_(0.0, 1.0)
    return content


# From the photo the optimisation is deterministic, so "New seed" used to change nothing: two seeds
# gave identical pixels. A little seeded noise in the start (uniform, at most this many levels of
# 255) makes each seed settle the strokes differently without changing the look. Measured with
# benchmarks/seed_noise.py (tubingen / starry_night, default preset, 256 px, 100 iterations, one
# level): without the noise seeds 1 and 2 gave identical pixels; with it seeds 1, 2 and 3 differ from
# each other by 14.3-14.4 levels on average (the strokes lie elsewhere; the picture looks the same,
# benchmarks/results/seed-noise.png), and the final total loss is unchanged within the seeds' spread:
# 0.9287 without the noise, 0.9238-0.9298 with it.
START_NOISE_LEVELS = 2.0


def start_noise_levels(params: StyleParams) -> float:
    """The seeded noise in a start from the photo, in levels of 255 (0: none). Without style
    there is nothing for a seed to vary, and strength 0 must give the photo itself."""
    if params.init is InitMode.CONTENT and params.active_style_layers:
        return START_NOISE_LEVELS
    return 0.0


class _PreviewClock:
    """When a progress record carries a preview image: the first and last of each level, every
    ``every`` iterations, and otherwise every ``interval`` seconds."""

    def __init__(self, interval: float, every: int) -> None:
        self.interval, self.every, self.last = interval, every, -math.inf

    def due(self, iteration: int, last_of_level: bool, now: float) -> bool:
        due = (
            last_of_level
            or iteration == 1
            or bool(self.every and iteration % self.every == 0)
            or now - self.last >= self.interval
        )
        if due:
            self.last = now
        return due


def stylize(
    job: StyleJob,
    *,
    should_stop: Callable[[], bool] | None = None,
    weights: VGGWeights | None = None,
    preview_interval: float = 0.5,
    preview_every: int = 0,
    decoded: Mapping[Path, LoadedImage] | None = None,
    options: RunOptions | None = None,
    resume: ResumePoint | None = None,
) -> Iterator[Record]:
    """Run a job: yields ``Progress`` per iteration (a preview every ``preview_every``
    iterations or ``preview_interval`` seconds) and finally one ``Finished``.

    Inputs are loaded and validated, and the network built, before the first
    record is yielded; input problems raise ``InputError`` from the first ``next()``.
    ``decoded`` has input images the caller already read and validated, by path, so they are not
    decoded twice (and the run uses exactly what the caller checked).
    """
    options = options or RunOptions(preview_interval=preview_interval, preview_every=preview_every)
    if job.params.method is Method.INSTANT:
        yield from _instant(job, decoded)
        return
    with torch.inference_mode(False):
        yield from _run(job, should_stop or (lambda: False), weights, decoded, options, resume)


def _instant(job: StyleJob, decoded: Mapping[Path, LoadedImage] | None) -> Iterator[Record]:
    """The instant method: one pass of the feed-forward network, one progress record, the result."""
    from engine import instant

    started = time.perf_counter()
    loaded = _load_inputs(job, decoded)
    inputs = _coloured(loaded, job.params)
    size = output_size(inputs.content.size, job.params.size)
    draft = instant_draft(inputs, job.params, job.normalized_blend, size)
    image = _finish_colours(draft, loaded.content, job.params)
    elapsed = time.perf_counter() - started
    yield Progress(iteration=1, total=1, elapsed=elapsed, losses={}, preview=to_uint8(image), size=size)
    alpha = _alpha_at(inputs.content, size)
    yield Finished(
        job=job,
        image=image,
        iterations=1,
        seconds=elapsed,
        device=instant.device_name(),
        losses={},
        alpha=alpha,
        weights_id=instant.WEIGHTS_ID,
        extra={"inputs": loaded.hashes()},
    )


def _run(
    job: StyleJob,
    should_stop: Callable[[], bool],
    weights: VGGWeights | None,
    decoded: Mapping[Path, LoadedImage] | None,
    options: RunOptions,
    resume: ResumePoint | None = None,
) -> Iterator[Record]:
    params = job.params
    control = Control(should_stop, time.perf_counter(), params.max_seconds)
    loaded = _load_inputs(job, decoded)
    key = job_key(job, loaded.hashes())
    if resume is not None and resume.key != key:
        raise InputError("the saved state belongs to another run (other parameters or inputs)")
    inputs = _coloured(loaded, params)
    device_info = choose_device(params.device)
    weights = weights if weights is not None else load_weights(params.weights)
    network = Network.build(
        weights, params, device_info.device, network_dtype(params.precision, device_info.device),
        options.channels_last,
    )  # fmt: skip
    levels = plan_levels(params)
    sizes = level_sizes(inputs.content.size, params)
    total = sum(level.iterations for level in levels)
    level_inputs = LevelInputs(
        inputs.content, inputs.styles, job.normalized_blend, control, inputs.regions, job.region_strengths
    )
    previews = _PreviewClock(options.preview_interval, options.preview_every)

    iteration = 0
    losses: Mapping[str, float] = {}
    pending = [device_info.notice] if device_info.notice else []
    reason, message, fallbacks = StopReason.COMPLETED, "", []
    level_params = params
    # The final level's last iterations that run with the float32 network (engine.device), and how
    # many did.
    float32_finish, in_float32 = network_setup(params.precision, device_info.device).float32_finish, 0
    image: Tensor | None = None
    stopped_at: ResumePoint | None = None
    if resume is not None:
        if resume.level >= len(levels):
            raise InputError("the saved state is of a level this run does not have")
        iteration = resume.iteration
        level_params = params.replace(**resume.fallback_params)
        network = network.with_dtype(network_dtype(level_params.precision, network.device))
    for index, (level, (size, _)) in enumerate(zip(levels, sizes, strict=True)):
        state = None
        if resume is not None and index < resume.level:
            continue  # done before the stop
        if resume is not None and index == resume.level:
            state = resume.state
            image = state.image
        elif image is None:
            image = initial_image(inputs, params, size, job.normalized_blend)
            image = keep_photo_unpainted(image, inputs.content, inputs.regions, job.region_strengths)
        else:
            image = resize(image.float().cpu(), size)
            image = keep_photo_unpainted(image, inputs.content, inputs.regions, job.region_strengths)
        log.info("level %d/%d: %dx%d, %d iterations", index + 1, len(levels), *size, level.iterations)
        # Not after a fallback made a level leaner (float32 needs more memory than it had).
        finish = float32_finish if index == len(levels) - 1 and not is_leaner(level_params, params) else 0
        steps = run_level(
            image, level, index, level_params, network, level_inputs, iteration + 1, state, finish
        )  # fmt: skip
        done_in_level = state.done if state is not None else 0
        while True:
            try:
                step = next(steps)
            except StopIteration as finished:
                outcome = finished.value
                break
            iteration += 1
            done_in_level += 1
            losses = step.losses
            last = done_in_level == level.iterations
            preview = None
            if previews.due(iteration, last, control.elapsed):
                preview = to_uint8(_finish_colours(to_numpy(step.shown), loaded.content, params))
            yield Progress(
                iteration=iteration,
                total=total,
                elapsed=control.elapsed,
                losses=losses,
                preview=preview,
                level=index + 1,
                levels=len(levels),
                size=(step.shown.shape[-1], step.shown.shape[-2]),
                message="; ".join(text for text in (*pending, step.notice) if text),
            )
            pending = []
        image, network = outcome.end.image, outcome.network
        reason, message = outcome.end.reason, outcome.end.message
        in_float32 = outcome.float32_finish
        if outcome.fallbacks:
            fallbacks.extend(outcome.fallbacks)
            level_params = level_params.replace(**{f: getattr(outcome.params, f) for f in LEAN_FIELDS})
        if reason is not StopReason.COMPLETED:
            if outcome.end.state is not None:
                changed = outcome.params.to_dict()
                fallback_params = {f: changed[f] for f in LEAN_FIELDS}
                stopped_at = ResumePoint(key, index, iteration, outcome.end.state, fallback_params)
            break
    assert image is not None
    final_size = output_size(inputs.content.size, params.size)
    final = resize(image.float().cpu().clamp(0, 1), final_size)
    alpha = _alpha_at(inputs.content, final_size)
    yield Finished(
        job=job,
        image=_finish_colours(to_numpy(final), loaded.content, params),
        iterations=iteration,
        seconds=control.elapsed,
        device=f"{device_info.name}, {replace(network.setup, float32_finish=in_float32).describe()}",
        losses=losses,
        reason=reason,
        message=message,
        alpha=alpha,
        weights_id=weights.id,
        resume=stopped_at,
        extra={
            "inputs": loaded.hashes(),
            "fallbacks": list(fallbacks),
            # The precision and layout the network ran in: what "auto" became on this machine.
            "network": {
                "precision": network.setup.precision.value,
                "channels_last": network.channels_last,
                # Iterations at the end that ran with the float32 network (engine.run.fallback.run_level).
                **({"float32_finish": in_float32} if in_float32 else {}),
            },
            # What a start from the photo needs, besides the seed, to be made again (see initial_image).
            **({"start_noise_levels": start_noise_levels(params)} if start_noise_levels(params) else {}),
        },
    )
