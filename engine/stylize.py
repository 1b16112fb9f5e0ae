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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.device import available_bytes, choose_device, network_dtype
from engine.hostmemory import REUSE_PEAK_FACTOR, reuse_freed_memory
from engine.hostmemory import available as host_memory_reuse_available
from engine.imageio import LoadedImage, load_image
from engine.losses import ContentLoss, StyleLoss, StyleTransferLoss, TVLoss, gram_matrix
from engine.memory import (
    HEADROOM,
    estimate_peak_bytes,
    plan_memory,
    smaller_alternatives,
)
from engine.params import InitMode, Optimizer, StyleJob, StyleParams
from engine.plan import (
    Level,
    check_output_shape,
    check_style_shape,
    level_sizes,
    output_size,
    plan_levels,
    smallest_long_edge,
)
from engine.records import Finished, Progress, Record, StopReason, to_uint8
from engine.tiles import TILE_MARGIN
from engine.vgg import VGGFeatures
from engine.weights import VGGWeights, load_weights

log = logging.getLogger(__name__)


# Above this first total, L-BFGS optimises the loss divided by it (see optimise_whole).
_LARGE_LOSS = 1e3


def lbfgs_loss_scale(first_total: float) -> float:
    """The constant L-BFGS's objective is multiplied by, from the level's first total loss."""
    return 1.0 / first_total if math.isfinite(first_total) and first_total > _LARGE_LOSS else 1.0


# An L-BFGS step that multiplies the loss by more than this overshot; it is undone (see
# optimise_whole). Ordinary steps without a line search change the loss by a few percent to ~2x.
_DIVERGED_FACTOR = 10.0


def diverged(accepted_total: float, new_total: float) -> bool:
    """Whether a step from an image with loss ``accepted_total`` to one with ``new_total`` overshot."""
    return not math.isfinite(new_total) or new_total > _DIVERGED_FACTOR * accepted_total


# torch's L-BFGS makes its first step 1/|g|_1 long: here a millionth of a grey level per pixel. That
# wastes the iteration, and the curvature pair it leaves is so noisy that the step after it can
# overshoot (the default preset went 24.9 -> 1.3e6 at iteration 4). So the first step of every
# level, and after a restart, is line-searched (strong Wolfe) from a trial that moves pixels by at
# most 1% of the range on average. Measured on Tubingen at 512 px: one extra evaluation per level,
# loss after 10 iterations 3.8 instead of 8.4, final loss 1.35 instead of 1.37, no overshoot.
_FIRST_STEP_MEAN_CHANGE = 0.01
_FIRST_STEP_MAX_EVALUATIONS = 20


class _StopRequested(Exception):
    """Raised inside the L-BFGS closure to abandon a step the caller no longer wants."""


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA, MPS and host allocators each report running out differently."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _to_tensor(rgb: np.ndarray) -> Tensor:
    # Contiguous NCHW: L-BFGS flattens gradients with view(), which needs standard strides.
    return (
        torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        .permute(2, 0, 1)
        .unsqueeze(0)
        .contiguous()
    )


def _to_numpy(image: Tensor) -> np.ndarray:
    return image.detach().clamp(0, 1).squeeze(0).permute(1, 2, 0).float().cpu().numpy()


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a (1, C, H, W) tensor to (width, height); antialiased when shrinking."""
    width, height = size
    if image.shape[-2:] == (height, width):
        return image
    # contiguous(): from a 1 x 1 image, interpolate returns channels-last strides (both layouts fit a
    # 1 x 1 input), and L-BFGS's view() of the gradient fails on them.
    return (
        F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        .clamp(0, 1)
        .contiguous()
    )


def _stride(layer: str) -> int:
    block = int(layer[4] if layer.startswith("pool") else layer[-3])
    return 2 ** (block if layer.startswith("pool") else block - 1)


@dataclass(frozen=True)
class _Tile:
    """A tile: the core it updates and the larger crop (core plus context) it is computed on."""

    core: tuple[int, int, int, int]  # y0, y1, x0, x1 in image pixels
    crop: tuple[int, int, int, int]

    def core_in_crop(self) -> tuple[int, int, int, int]:
        (y0, y1, x0, x1), (cy0, _, cx0, _) = self.core, self.crop
        return y0 - cy0, y1 - cy0, x0 - cx0, x1 - cx0

    def feature_window(self, layer: str, rows: int, cols: int) -> tuple[int, int, int, int]:
        """The core's feature positions (top, bottom, left, right) in a ``rows`` x ``cols`` map of
        ``layer`` computed on the crop (positions scale with the layer's stride)."""
        y0, y1, x0, x1 = self.core_in_crop()
        step = _stride(layer)
        # A thin core at the image's edge can fall past the last (floored) feature position:
        # keep at least the nearest one rather than an empty slice.
        top, left = min(y0 // step, rows - 1), min(x0 // step, cols - 1)
        bottom, right = min(max(top + 1, -(-y1 // step)), rows), min(max(left + 1, -(-x1 // step)), cols)
        return top, bottom, left, right

    def core_features(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each layer's features over the core only."""
        out = {}
        for name, value in features.items():
            top, bottom, left, right = self.feature_window(name, value.shape[-2], value.shape[-1])
            out[name] = value[..., top:bottom, left:right]
        return out

    def in_whole_image(self, width: int, height: int) -> _Tile:
        """The same core seen from the whole image: its windows index whole-image feature maps."""
        return _Tile(self.core, (0, height, 0, width))


def tile_grid(
    width: int, height: int, tile: int, offset: tuple[int, int], margin: int = TILE_MARGIN
) -> list[_Tile]:
    """Tiles covering the image, the grid shifted by ``offset`` so seams move every iteration.

    Offsets and margins are multiples of 16 (the deepest stride), so a core maps to whole
    feature positions at every layer.
    """
    tiles = []
    for y in range(-offset[1], height, tile):
        for x in range(-offset[0], width, tile):
            y0, y1, x0, x1 = max(0, y), min(height, y + tile), max(0, x), min(width, x + tile)
            if y1 - y0 < 1 or x1 - x0 < 1:
                continue
            crop = (
                max(0, y0 - margin),
                min(height, y1 + margin),
                max(0, x0 - margin),
                min(width, x1 + margin),
            )
            tiles.append(_Tile((y0, y1, x0, x1), crop))
    return tiles


class _Run:
    """State of one run; ``stylize`` drives it."""

    def __init__(
        self,
        job: StyleJob,
        should_stop: Callable[[], bool] | None,
        weights: VGGWeights | None,
        preview_interval: float,
        preview_every: int,
        decoded: Mapping[Path, LoadedImage] | None = None,
    ) -> None:
        def load(path: Path) -> LoadedImage:
            already = (decoded or {}).get(Path(path))
            return already if already is not None else load_image(path)

        self.job = job
        self.params = job.params
        self.should_stop = should_stop or (lambda: False)
        self.preview_interval = preview_interval
        self.preview_every = preview_every
        self.started = time.perf_counter()
        self.content = load(job.content)
        check_output_shape(self.content.size, self.params, job.content)
        self.styles = [load(path) for path in job.styles]
        for path, style in zip(job.styles, self.styles, strict=True):
            check_style_shape(style.size, path)
        self.init_image = load(self.params.init_image) if self.params.init is InitMode.IMAGE else None
        self.device_info = choose_device(self.params.device)
        self.device = self.device_info.device
        self.weights = weights if weights is not None else load_weights(self.params.weights)
        self.content_layers = self.params.active_content_layers
        self.style_layers = self.params.active_style_layers
        self.wanted = {name for name, _ in self.content_layers + self.style_layers}
        self.dtype = network_dtype(self.params.precision, self.device)
        self.net = VGGFeatures(self.weights, self.params.pooling, self.params.deepest_layer, keep=self.wanted)
        self._place_network(self.dtype)
        self.output_size = output_size(self.content.size, self.params.size)
        self.levels = plan_levels(self.params)
        self.total = sum(level.iterations for level in self.levels)
        self.iteration = 0
        self.losses: dict[str, float] = {}
        self.last_preview_time = -math.inf
        self.notices: list[str] = [self.device_info.notice] if self.device_info.notice else []
        self.message = ""
        self.reason = StopReason.COMPLETED
        self.fallbacks: list[str] = []

    def _place_network(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.net = self.net.to(device=self.device, dtype=dtype)
        if self.device.type == "cuda":
            # Same-size inputs every iteration: let cuDNN pick the fastest kernels once; channels_last
            # feeds the tensor cores without layout shuffles.
            torch.backends.cudnn.benchmark = True
            self.net = self.net.to(memory_format=torch.channels_last)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def notify(self, text: str) -> None:
        log.warning(text)
        self.notices.append(text)

    def _prepare(self, image: Tensor) -> Tensor:
        image = image.to(self.device)
        if self.device.type == "cuda":
            image = image.contiguous(memory_format=torch.channels_last)
        return image

    def _features(self, image: Tensor, wanted: set[str]) -> dict[str, Tensor]:
        return self.net(self._prepare(image), wanted)

    # -- loss targets -----------------------------------------------------------------------------
    def style_targets(self, level_long_edge: int, tile: int) -> dict[str, Tensor]:
        """Blended per-position Gram matrices of the style images, by layer.

        The style is seen at a size tied to the *current* long edge, so its brush marks keep the
        same proportion to the picture at every pyramid level.  With tiles, the Gram sums are
        accumulated tile by tile: the statistics still come from the whole painting.
        """
        names = {n for n, _ in self.style_layers}
        style_long_edge = round(level_long_edge * self.params.style_scale)
        per_style: list[dict[str, Tensor]] = []
        for style in self.styles:
            # A thin painting is seen a little larger rather than thinner than the network allows.
            long_edge = max(style_long_edge, smallest_long_edge(style.size))
            style_tensor = resize(_to_tensor(style.rgb), output_size(style.size, long_edge))
            per_style.append(self._gram_of(style_tensor, names, tile))
        blend = self.job.normalized_blend
        return {n: StyleLoss.blended_target([g[n] for g in per_style], blend) for n in names}

    def _gram_of(self, image: Tensor, names: set[str], tile: int) -> dict[str, Tensor]:
        height, width = image.shape[-2:]
        if not tile or max(width, height) <= tile:
            with torch.no_grad():
                features = self._features(image, names)
                return {n: gram_matrix(features[n]) for n in names}
        sums: dict[str, Tensor] = {}
        counts = dict.fromkeys(names, 0)
        for part in tile_grid(width, height, tile, (0, 0)):
            y0, y1, x0, x1 = part.crop
            with torch.no_grad():
                core = part.core_features(self._features(image[..., y0:y1, x0:x1], names))
            for n in names:
                positions = core[n].shape[-1] * core[n].shape[-2]
                weighted = gram_matrix(core[n]) * positions
                sums[n] = weighted if n not in sums else sums[n] + weighted
                counts[n] += positions
        return {n: sums[n] / counts[n] for n in names}

    def stitched_features(self, image: Tensor, names: set[str], tile: int) -> dict[str, Tensor]:
        """Whole-image feature maps of ``image`` computed tile by tile, kept on the CPU in float32.

        The content target of a tiled level is computed once here instead of once per tile and
        iteration (it was a quarter of a tiled iteration's work). A core's features are exact while
        the layer's receptive field fits in the tile margin (relu4_2: 42 px of 64), so the moving
        tiles read the same target as a whole-image run would.
        """
        height, width = image.shape[-2:]
        maps: dict[str, Tensor] = {}
        for part in tile_grid(width, height, tile, (0, 0)):
            y0, y1, x0, x1 = part.crop
            with torch.no_grad():
                features = self._features(image[..., y0:y1, x0:x1], names)
            whole = part.in_whole_image(width, height)
            for name, value in features.items():
                if name not in maps:
                    step = _stride(name)
                    maps[name] = torch.zeros(1, value.shape[1], height // step, width // step)
                top, bottom, left, right = part.feature_window(name, *value.shape[-2:])
                g_top, _, g_left, _ = whole.feature_window(name, *maps[name].shape[-2:])
                rows, cols = bottom - top, right - left
                maps[name][..., g_top : g_top + rows, g_left : g_left + cols] = (
                    value[..., top:bottom, left:right].float().cpu()
                )
        return maps

    def build_loss(self, content: Tensor | None, style_targets: dict[str, Tensor]) -> StyleTransferLoss:
        content_features = None
        if self.content_layers and content is not None:
            with torch.no_grad():
                content_features = self._features(content, {n for n, _ in self.content_layers})
        convention = self.params.loss_convention
        style_terms = [(StyleLoss(n, style_targets[n], convention), w) for n, w in self.style_layers]
        return self.combine(content_features, style_terms)

    def combine(
        self, content_features: dict[str, Tensor] | None, style_terms: list[tuple[StyleLoss, float]]
    ) -> StyleTransferLoss:
        params = self.params
        content_terms = [
            (ContentLoss(n, content_features[n], params.loss_convention), w)
            for n, w in (self.content_layers if content_features is not None else ())
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

    # -- progress ---------------------------------------------------------------------------------
    def preview_due(self, last_of_level: bool) -> bool:
        if last_of_level or self.iteration == 1:
            return True
        if self.preview_every and self.iteration % self.preview_every == 0:
            return True
        return self.elapsed - self.last_preview_time >= self.preview_interval

    def progress(self, image: Tensor, level_index: int, last: bool) -> Progress:
        preview = None
        if self.preview_due(last):
            preview = to_uint8(_to_numpy(image))
            self.last_preview_time = self.elapsed
        record = Progress(
            iteration=self.iteration,
            total=self.total,
            elapsed=self.elapsed,
            losses=self.losses,
            preview=preview,
            level=level_index + 1,
            levels=len(self.levels),
            size=(image.shape[-1], image.shape[-2]),
            message="; ".join(self.notices),
        )
        self.notices = []
        return record

    def _check_losses(self, losses: dict[str, float]) -> bool:
        if all(math.isfinite(v) for v in losses.values()):
            return True
        bad = ", ".join(n for n, v in losses.items() if not math.isfinite(v) and n != "total")
        self.message = (
            f"the {bad or 'total'} loss became {losses['total']} at iteration {self.iteration + 1}; "
            "stopped and kept the last good image (try smaller weights or a lower learning rate)"
        )
        log.warning(self.message)
        self.reason = StopReason.NUMERICAL_ERROR
        return False

    def _should_end(self) -> bool:
        if self.should_stop():
            self.reason = StopReason.STOPPED
            return True
        if self.params.max_seconds and self.elapsed >= self.params.max_seconds:
            self.reason = StopReason.TIME_LIMIT
            return True
        return False

    # -- one level, whole image -------------------------------------------------------------------
    def optimise_whole(self, image: Tensor, params: StyleParams, iterations: int, level: Level, index: int):
        """Optimise the whole image at once; leaves the result in ``self.image`` (CPU)."""
        width, height = image.shape[-1], image.shape[-2]
        content = resize(_to_tensor(self.content.rgb), (width, height)) if self.content_layers else None
        loss_fn = self.build_loss(content, self.style_targets(level.size, 0) if self.style_layers else {})
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
        self.image = image.detach().clone()
        evaluated: dict[str, Tensor] = {}

        # Large losses are divided by their first value before L-BFGS sees them. torch's L-BFGS
        # falls back to a plain gradient step of length |g| whenever a curvature pair is rejected;
        # with the paper's unnormalised losses (around 1e11 for Gatys' convention) that step throws
        # the image to infinity. A constant factor does not move the minimum. Losses already near 1
        # (our normalised convention) are left as they are, and so is Adam, whose epsilon is part
        # of some recipes.
        scale: list[float] = []

        def closure() -> Tensor:
            if self.should_stop():
                raise _StopRequested
            optimizer.zero_grad(set_to_none=True)
            total, terms = loss_fn(self.net(x, self.wanted), x)
            if params.optimizer is Optimizer.LBFGS:
                if not scale:
                    scale.append(lbfgs_loss_scale(float(total.detach())))
                (total * scale[0]).backward()
            else:
                total.backward()
            if not evaluated:  # a line search evaluates more points; keep the step's start
                evaluated["total"] = total.detach()
                evaluated.update({name: value.detach() for name, value in terms.items()})
            return total * scale[0] if scale else total

        lbfgs = params.optimizer is Optimizer.LBFGS

        def measure(image: Tensor) -> dict[str, float]:
            with torch.no_grad():
                total, terms = loss_fn(self.net(image, self.wanted), image)
            return {"total": float(total)} | {name: float(value) for name, value in terms.items()}

        # Past its first step L-BFGS has no line search (as in neural-style and its descendants), so
        # now and then a step overshoots by orders of magnitude; it usually recovers, but a preview
        # or a saved result could be that wild image. So with L-BFGS every image shown or kept is
        # one whose loss was measured: a step is judged by the next evaluation (``self.image`` and
        # ``self.losses`` hold the last accepted image and its loss), an overshoot is undone and the
        # curvature history restarted, and the level's last step is measured once more (one
        # forward pass) before it is accepted.
        started = self.iteration
        just_restarted = False
        for step in range(iterations):
            if self._should_end():
                break
            before = x.detach().clone()
            evaluated.clear()
            if lbfgs:
                first = not optimizer.state  # a new level, or the history was just restarted
                group = optimizer.param_groups[0]
                group["line_search_fn"] = "strong_wolfe" if first else None
                group["max_eval"] = _FIRST_STEP_MAX_EVALUATIONS if first else 1
                # torch's first trial is lr * g / |g|_1 (for |g|_1 > 1): a mean change of exactly that.
                group["lr"] = x.numel() * _FIRST_STEP_MEAN_CHANGE if first else 1.0
            try:
                optimizer.step(closure)
            except _StopRequested:
                # A stop inside the line search leaves x at an unmeasured trial point.
                with torch.no_grad():
                    x.copy_(before)
                self.reason = StopReason.STOPPED
                break
            # These losses were measured on ``before``, the image the step started from.
            losses = {name: float(value) for name, value in evaluated.items()}
            last = step == iterations - 1
            if lbfgs and step > 0 and not just_restarted and diverged(self.losses["total"], losses["total"]):
                self.undo_overshoot(x, optimizer, self.image, self.losses["total"], losses["total"])
                before, losses = self.image.to(x.device), self.losses
                just_restarted = True
            else:
                just_restarted = False
                if not self._check_losses(losses):
                    break  # self.image still holds the last image whose loss was finite
            self.image = before.cpu()
            if params.optimizer is Optimizer.ADAM:
                with torch.no_grad():
                    x.clamp_(0, 1)
            shown = x
            if lbfgs:
                shown = before
                if last and not just_restarted:
                    final_losses = measure(x)
                    if diverged(losses["total"], final_losses["total"]):
                        self.undo_overshoot(x, optimizer, before, losses["total"], final_losses["total"])
                    else:
                        shown, losses = x, final_losses
                        self.image = x.detach().cpu()
            self.iteration += 1
            self.losses = losses
            yield self.progress(shown, index, last=last)
        if self.reason is StopReason.NUMERICAL_ERROR:
            return
        if lbfgs and self.iteration > started:
            # Stopped early, or the level completed: either way the last measured (and shown) image.
            return
        self.image = x.detach().cpu()

    def undo_overshoot(
        self, x: Tensor, optimizer: torch.optim.Optimizer, back_to: Tensor, was: float, became: float
    ) -> None:
        """Put ``x`` back to an image whose loss is known and make L-BFGS start its history again."""
        with torch.no_grad():
            x.copy_(back_to.to(x.device))
        optimizer.state.clear()
        text = (
            f"an L-BFGS step overshot (loss {was:.4g} -> {became:.4g}) at iteration {self.iteration + 1}; "
            "undid it and restarted the optimiser's history"
        )
        log.info(text)
        self.notices.append(text)

    # -- one level, in tiles ----------------------------------------------------------------------
    def optimise_tiled(self, image: Tensor, params: StyleParams, iterations: int, level: Level, index: int):
        """Adam over overlapping tiles whose grid moves every iteration; the image stays on the CPU.

        L-BFGS needs the gradient of the whole image at once, so tiles always use Adam. Each
        iteration sums every tile's gradient over its core (its context margin only informs the
        features) and takes one Adam step for the whole image, so an iteration means the same as
        without tiles. Random grid offsets keep seams from settling anywhere.
        """
        tile = max(64, params.tile_size // 16 * 16)
        height, width = image.shape[-2:]
        content_names = {n for n, _ in self.content_layers}
        content_maps: dict[str, Tensor] = {}
        if content_names:
            content = resize(_to_tensor(self.content.rgb), (width, height))
            content_maps = self.stitched_features(content, content_names, tile)
        targets = self.style_targets(level.size, tile) if self.style_layers else {}
        x = image.detach().clone().float().cpu()
        self.image = x.clone()
        first, second = torch.zeros_like(x), torch.zeros_like(x)
        beta1, beta2, eps, rate = params.adam_beta1, params.adam_beta2, params.adam_eps, params.learning_rate
        generator = torch.Generator().manual_seed(params.seed + index)
        style_terms = [(StyleLoss(n, targets[n], params.loss_convention), w) for n, w in self.style_layers]
        for step in range(iterations):
            if self._should_end():
                break
            offset = tuple(16 * int(v) for v in torch.randint(0, tile // 16, (2,), generator=generator))
            grad = torch.zeros_like(x)
            sums = {"content": 0.0, "style": 0.0, "tv": 0.0}
            interrupted = False
            for part in tile_grid(width, height, tile, offset):  # type: ignore[arg-type]
                if self.should_stop():
                    interrupted = True
                    break
                y0, y1, x0, x1 = part.crop
                cy0, cy1, cx0, cx1 = part.core_in_crop()
                share = (cy1 - cy0) * (cx1 - cx0) / (width * height)
                content_core = None
                if content_maps:
                    whole = part.in_whole_image(width, height)
                    content_core = {}
                    for name, value in content_maps.items():
                        top, bottom, left, right = whole.feature_window(name, *value.shape[-2:])
                        content_core[name] = value[..., top:bottom, left:right].to(self.device)
                crop = self._prepare(x[..., y0:y1, x0:x1].clone()).requires_grad_(True)
                features = part.core_features(self.net(crop, self.wanted))
                loss_fn = self.combine(content_core, style_terms)
                total, weighted = loss_fn(features, crop[..., cy0:cy1, cx0:cx1])
                (share * total).backward()
                assert crop.grad is not None
                grad[..., y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] += (
                    crop.grad[..., cy0:cy1, cx0:cx1].float().cpu()
                )
                for name, value in weighted.items():
                    sums[name] += share * float(value.detach())
            if interrupted:
                self.reason = StopReason.STOPPED
                break
            losses = sums | {"total": sum(sums.values())}
            if not self._check_losses(losses):
                break
            self.image = x.clone()
            # Adam by hand: torch's Adam keeps state per tensor, and a tile is a moving window.
            t = step + 1
            first.mul_(beta1).add_(grad, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denominator = (second / (1 - beta2**t)).sqrt_().add_(eps)
            x.addcdiv_(first, denominator, value=-rate / (1 - beta1**t)).clamp_(0, 1)
            self.iteration += 1
            self.losses = losses
            yield self.progress(x, index, last=step == iterations - 1)
        if self.reason is not StopReason.NUMERICAL_ERROR:
            self.image = x

    # -- levels, memory and fallbacks ---------------------------------------------------------------
    def level_params(self, level: Level, size: tuple[int, int]) -> StyleParams:
        """This level's parameters: the job's, changed only if the memory plan says it won't fit."""
        # The level's own iteration count: it bounds how much L-BFGS history the plan reserves.
        at_level = self.params.replace(
            size=level.size, iterations=level.iterations, coarse_to_fine=False, levels=()
        )
        plan = plan_memory(at_level, size, self.device)
        log.info("level %dx%d: %s", *size, plan.describe())
        if plan.fits or plan.suggested is None or plan.suggested.size != at_level.size:
            if not plan.fits:
                self.notify(f"memory at {size[0]}x{size[1]}: {plan.describe()}; trying anyway")
            return at_level
        self.notify(f"memory at {size[0]}x{size[1]}: {plan.describe()}; doing that")
        return plan.suggested

    def may_keep_freed_memory(self, params: StyleParams, size: tuple[int, int]) -> bool:
        """On the CPU, keep freed activations for the next iteration (faster, see
        engine.hostmemory) when even the larger peak that costs fits in the free memory."""
        if self.device.type != "cpu" or not host_memory_reuse_available():
            return False
        needed = estimate_peak_bytes(params, size, "cpu") * REUSE_PEAK_FACTOR
        return needed <= available_bytes(self.device) * HEADROOM

    def run_level(self, image: Tensor, level: Level, index: int):
        size = (image.shape[-1], image.shape[-2])
        params = self.level_params(level, size)
        done_before = self.iteration
        tried: set[str] = set()
        while True:
            remaining = level.iterations - (self.iteration - done_before)
            tiled = params.tile_size > 0 and max(size) > params.tile_size
            try:
                with reuse_freed_memory(self.may_keep_freed_memory(params, size)):
                    if tiled:
                        yield from self.optimise_tiled(image, params, remaining, level, index)
                    else:
                        yield from self.optimise_whole(image, params, remaining, level, index)
                return
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                image = self.image
                self._free_memory()
                options = [
                    (w, p) for w, p in smaller_alternatives(params, self.device.type) if w not in tried
                ]
                if not options:
                    self.reason = StopReason.OUT_OF_MEMORY
                    self.message = (
                        f"out of memory at {size[0]}x{size[1]} even with every fallback; kept the last good "
                        "image (try a smaller size)"
                    )
                    log.error(self.message)
                    return
                words, params = options[0]
                tried.add(words)
                self.fallbacks.append(words)
                if params.precision != self.params.precision:
                    self._place_network(network_dtype(params.precision, self.device))
                self.notify(
                    f"ran out of memory at {size[0]}x{size[1]}; continuing from the last image: {words}"
                )

    def _free_memory(self) -> None:
        import gc

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def run(self) -> Iterator[Record]:
        image: Tensor | None = None
        sizes = level_sizes(self.content.size, self.params)
        for index, level in enumerate(self.levels):
            size = sizes[index][0]
            image = self.initial_image(size) if image is None else resize(image.float().cpu(), size)
            log.info(
                "level %d/%d: %dx%d, %d iterations", index + 1, len(self.levels), *size, level.iterations
            )
            self.image = image
            yield from self.run_level(image, level, index)
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
            extra={"inputs": self.input_hashes(), "fallbacks": list(self.fallbacks)},
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
    decoded: Mapping[Path, LoadedImage] | None = None,
) -> Iterator[Record]:
    """Run a job: yields ``Progress`` per iteration (a preview every ``preview_every``
    iterations or ``preview_interval`` seconds) and finally one ``Finished``.

    Inputs are loaded and validated, and the network built, before the first
    record is yielded; input problems raise ``InputError`` from the first ``next()``.
    ``decoded`` has input images the caller already read and validated, by path, so they are not
    decoded twice (and the run uses exactly what the caller checked).
    """
    run = _Run(job, should_stop, weights, preview_interval, preview_every, decoded)
    with torch.inference_mode(False):
        yield from run.run()
