"""The optimisation: a generator of progress records that ends with the result.

    for record in stylize(job, should_stop=flag.is_set):
        if isinstance(record, Finished): ...

The caller stops a run by making ``should_stop`` return True; it is polled
between iterations and inside the L-BFGS closure, so a stop takes effect
within one iteration and still ends with a ``Finished`` holding the last image.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.device import choose_device, network_dtype
from engine.imageio import LoadedImage, load_image
from engine.losses import ContentLoss, StyleLoss, StyleTransferLoss, TVLoss, gram_matrix
from engine.params import InitMode, Optimizer, StyleJob, StyleParams
from engine.records import Finished, Progress, Record, StopReason, to_uint8
from engine.vgg import VGGFeatures
from engine.weights import VGGWeights, load_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Level:
    """One step of the coarse-to-fine pyramid: optimise at this long edge for this many iterations."""

    size: int
    iterations: int


def plan_levels(params: StyleParams) -> tuple[Level, ...]:
    return (Level(params.size, params.iterations),)


def output_size(content_size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """(width, height) with the content's aspect ratio and the given long edge."""
    width, height = content_size
    scale = long_edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _StopRequested(Exception):
    """Raised inside the L-BFGS closure to abandon a step the caller no longer wants."""


def _to_tensor(rgb: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def _to_numpy(image: Tensor) -> np.ndarray:
    return image.detach().clamp(0, 1).squeeze(0).permute(1, 2, 0).float().cpu().numpy()


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a (1, C, H, W) tensor to (width, height); antialiased when shrinking."""
    width, height = size
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(
        image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)


class _Run:
    """State of one run; ``stylize`` drives it."""

    def __init__(
        self,
        job: StyleJob,
        should_stop: Callable[[], bool] | None,
        weights: VGGWeights | None,
        preview_interval: float,
        preview_every: int,
    ) -> None:
        self.job = job
        self.params = job.params
        self.should_stop = should_stop or (lambda: False)
        self.preview_interval = preview_interval
        self.preview_every = preview_every
        self.started = time.perf_counter()
        self.content = load_image(job.content)
        self.styles = [load_image(path) for path in job.styles]
        self.init_image = load_image(self.params.init_image) if self.params.init is InitMode.IMAGE else None
        self.device_info = choose_device(self.params.device)
        self.device = self.device_info.device
        self.dtype = network_dtype(self.params.precision, self.device)
        self.weights = weights if weights is not None else load_weights(self.params.weights)
        self.content_layers = self.params.active_content_layers
        self.style_layers = self.params.active_style_layers
        self.wanted = {name for name, _ in self.content_layers + self.style_layers}
        net = VGGFeatures(self.weights, self.params.pooling, self.params.deepest_layer, keep=self.wanted)
        self.net = net.to(device=self.device, dtype=self.dtype)
        if self.device.type == "cuda":
            # Same-size inputs every iteration: let cuDNN pick the fastest kernels once.
            torch.backends.cudnn.benchmark = True
            self.net = self.net.to(memory_format=torch.channels_last)
        self.output_size = output_size(self.content.size, self.params.size)
        self.levels = plan_levels(self.params)
        self.total = sum(level.iterations for level in self.levels)
        self.iteration = 0
        self.losses: dict[str, float] = {}
        self.last_preview_time = -math.inf
        self.notice = self.device_info.notice

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _prepare(self, image: Tensor) -> Tensor:
        image = image.to(self.device)
        if self.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        return image

    def _features(self, image: Tensor, wanted: set[str]) -> dict[str, Tensor]:
        return self.net(self._prepare(image), wanted)

    def build_loss(self, size: tuple[int, int], level_long_edge: int) -> StyleTransferLoss:
        params = self.params
        convention = params.loss_convention
        content_terms: list[tuple[ContentLoss, float]] = []
        if self.content_layers:
            content = resize(_to_tensor(self.content.rgb), size)
            with torch.no_grad():
                features = self._features(content, {n for n, _ in self.content_layers})
            content_terms = [(ContentLoss(n, features[n], convention), w) for n, w in self.content_layers]
        style_terms: list[tuple[StyleLoss, float]] = []
        if self.style_layers:
            names = {n for n, _ in self.style_layers}
            grams: dict[str, list[Tensor]] = {n: [] for n in names}
            # The style is seen at a size tied to the *current* long edge, so its brush marks keep
            # the same proportion to the picture at every pyramid level.
            style_long_edge = max(16, round(level_long_edge * params.style_scale))
            for style in self.styles:
                style_tensor = resize(_to_tensor(style.rgb), output_size(style.size, style_long_edge))
                with torch.no_grad():
                    features = self._features(style_tensor, names)
                    for name in names:
                        grams[name].append(gram_matrix(features[name]))
                del features
            blend = self.job.normalized_blend
            style_terms = [
                (StyleLoss(n, StyleLoss.blended_target(grams[n], blend), convention), w)
                for n, w in self.style_layers
            ]
        return StyleTransferLoss(
            content_terms,
            style_terms,
            TVLoss(params.tv_norm),
            params.content_weight,
            params.style_weight,
            params.tv_weight,
        ).to(self.device)

    def initial_image(self, size: tuple[int, int]) -> Tensor:
        params = self.params
        content = resize(_to_tensor(self.content.rgb), size)
        if params.init is InitMode.IMAGE:
            assert self.init_image is not None
            return resize(_to_tensor(self.init_image.rgb), size)
        if params.init is InitMode.NOISE:
            generator = torch.Generator().manual_seed(params.seed)
            noise = torch.rand(content.shape, generator=generator)
            return params.noise_ratio * noise + (1 - params.noise_ratio) * content
        return content

    def preview_due(self, last_of_level: bool) -> bool:
        if last_of_level or self.iteration == 1:
            return True
        if self.preview_every and self.iteration % self.preview_every == 0:
            return True
        return self.elapsed - self.last_preview_time >= self.preview_interval

    def optimise(self, image: Tensor, level: Level, level_index: int) -> Iterator[Progress]:
        """Optimise ``image`` in place at one level; sets ``self.reason`` and ``self.image``."""
        params = self.params
        width, height = image.shape[-1], image.shape[-2]
        loss_fn = self.build_loss((width, height), level.size)
        x = self._prepare(image.detach().clone()).requires_grad_(True)
        if params.optimizer is Optimizer.LBFGS:
            # One iteration per step() so the caller sees every iteration. Negative tolerances
            # stop torch's L-BFGS from silently ending the run on a flat stretch.
            optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
                [x],
                lr=1.0,
                max_iter=1,
                history_size=params.lbfgs_history,
                tolerance_grad=-1,
                tolerance_change=-1,
            )
        else:
            optimizer = torch.optim.Adam(
                [x],
                lr=params.learning_rate,
                betas=(params.adam_beta1, params.adam_beta2),
                eps=params.adam_eps,
            )
        last_good = x.detach().clone()
        evaluated: dict[str, Tensor] = {}

        def closure() -> Tensor:
            if self.should_stop():
                raise _StopRequested
            optimizer.zero_grad(set_to_none=True)
            total, terms = loss_fn(self.net(x, self.wanted), x)
            total.backward()
            evaluated["total"] = total.detach()
            evaluated.update({name: value.detach() for name, value in terms.items()})
            return total

        self.reason = StopReason.COMPLETED
        for step in range(level.iterations):
            if self.should_stop():
                self.reason = StopReason.STOPPED
                break
            if params.max_seconds and self.elapsed >= params.max_seconds:
                self.reason = StopReason.TIME_LIMIT
                break
            before = x.detach().clone()
            try:
                optimizer.step(closure)
            except _StopRequested:
                self.reason = StopReason.STOPPED
                break
            losses = {name: float(value) for name, value in evaluated.items()}
            if not all(math.isfinite(v) for v in losses.values()):
                bad = ", ".join(n for n, v in losses.items() if not math.isfinite(v) and n != "total")
                self.message = (
                    f"the {bad or 'total'} loss became {losses['total']} at iteration {self.iteration + 1}; "
                    "stopped and kept the last good image (try smaller weights or a lower learning rate)"
                )
                log.warning(self.message)
                with torch.no_grad():
                    x.copy_(last_good)
                self.reason = StopReason.NUMERICAL_ERROR
                break
            last_good = before
            if params.optimizer is Optimizer.ADAM:
                with torch.no_grad():
                    x.clamp_(0, 1)
            self.iteration += 1
            self.losses = losses
            last = step == level.iterations - 1
            preview = None
            if self.preview_due(last):
                preview = to_uint8(_to_numpy(x))
                self.last_preview_time = self.elapsed
            yield Progress(
                iteration=self.iteration,
                total=self.total,
                elapsed=self.elapsed,
                losses=losses,
                preview=preview,
                level=level_index + 1,
                levels=len(self.levels),
                size=(width, height),
                message=self.notice,
            )
            self.notice = ""
        self.image = x.detach()

    def run(self) -> Iterator[Record]:
        self.message = ""
        image: Tensor | None = None
        self.reason = StopReason.COMPLETED
        for index, level in enumerate(self.levels):
            size = output_size(self.content.size, level.size)
            image = self.initial_image(size) if image is None else resize(image.float().cpu(), size)
            log.info(
                "level %d/%d: %dx%d, %d iterations", index + 1, len(self.levels), *size, level.iterations
            )
            yield from self.optimise(image, level, index)
            image = self.image
            if self.reason is not StopReason.COMPLETED:
                break
        assert image is not None
        final = resize(image.float().cpu().clamp(0, 1), self.output_size)
        alpha = None
        if self.content.alpha is not None:
            alpha_tensor = torch.from_numpy(self.content.alpha.astype(np.float32))[None, None]
            alpha = resize(alpha_tensor, self.output_size)[0, 0].numpy()
        yield Finished(
            job=self.job,
            image=_to_numpy(final),
            iterations=self.iteration,
            seconds=self.elapsed,
            device=self.device_info.name,
            losses=self.losses,
            reason=self.reason,
            message=self.message,
            alpha=alpha,
            weights_id=self.weights.id,
            extra={"inputs": self.input_hashes()},
        )

    def input_hashes(self) -> dict[str, str]:
        images: list[LoadedImage] = [self.content, *self.styles]
        if self.init_image is not None:
            images.append(self.init_image)
        return {str(image.path): image.sha256 for image in images if image.path is not None}


def stylize(
    job: StyleJob,
    *,
    should_stop: Callable[[], bool] | None = None,
    weights: VGGWeights | None = None,
    preview_interval: float = 0.5,
    preview_every: int = 0,
) -> Iterator[Record]:
    """Run a job: yields ``Progress`` per iteration (a preview every ``preview_every``
    iterations or ``preview_interval`` seconds) and finally one ``Finished``.

    Inputs are loaded and validated, and the network built, before the first
    record is yielded; input problems raise ``InputError`` from the first ``next()``.
    """
    run = _Run(job, should_stop, weights, preview_interval, preview_every)
    with torch.inference_mode(False):
        yield from run.run()
