"""Guided style terms (Gatys et al. 2017, spatial control): each region matches its own painting.

For region r with weights w (its mask at a layer's resolution, 0..1 per position) the picture's
statistics are taken within the region and normalised by its area:

    mean_r = Σ w f / Σ w,    gram_r = Σ w f fᵀ / Σ w

so a small region is compared with its painting as closely as a large one (divided by the whole
image's positions instead, a region covering a tenth of the picture could reach at most a tenth
of its painting's statistics). The region's term is the style loss of the job's statistic (Gram or
mean and covariance, engine.losses) for those statistics, times the region's share of the
picture (Σ w over the positions) and its strength: each pixel then feels the style pressure of a
run without masks, whatever the size of its region, and a mask that is white everywhere gives
exactly the unmasked term. Where the masks leave a pixel uncovered no style acts, and the content
term keeps the photo; a grey edge is a soft transition.

Masks reach each layer by area averaging to the layer's grid (H // stride x W // stride, VGG's
floors), and a tile reads its core's window of those grids, as the content targets do. A region's
statistics use only the positions its mask touches (gathered once per level and window), so
regions that share out the picture cost about one Gram matrix per layer in all, not one each.

The paintings' statistics for a region are taken the same way through their style masks.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.imageio import LoadedImage
from engine.layers import STRIDE
from engine.losses import STYLE_LOSSES, FeatureStats, blended_stats
from engine.params import StyleParams, StyleStatistic
from engine.plan import output_size, smallest_long_edge
from engine.regions import Regions
from engine.run.network import Network
from engine.run.targets import stats_of, style_targets, style_terms
from engine.run.tensors import resize, to_tensor
from engine.tiles import Tile, tile_grid

log = logging.getLogger(__name__)

_EPS = 1e-8
# Below this share of a window's positions a region is gathered; above it, weighting all of them
# is as fast as gathering (the copy costs what the skipped multiplications save).
_GATHER_BELOW = 0.9
# Windows (tile cores) whose gathered positions are kept, per term: a tiled level's grid moves
# every iteration, in steps of 16 px, so the same windows come back.
_WINDOWS_KEPT = 64


def layer_guides(weights: Tensor, names: Sequence[str], size: tuple[int, int]) -> dict[str, Tensor]:
    """Masks (R x H x W at the image's ``size``) at each layer's grid: area averages, R x h x w."""
    width, height = size
    guides = {}
    for name in names:
        step = STRIDE[name]
        rows, cols = max(1, height // step), max(1, width // step)
        guides[name] = F.adaptive_avg_pool2d(weights[None].float(), (rows, cols))[0]
    return guides


def weighted_sums(features: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Σ w, Σ w f and Σ w f fᵀ of a (1, N, h, w) feature map under weights (h, w), in float32."""
    channels = features.shape[1]
    flat = features.reshape(channels, -1).float()
    w = weight.reshape(-1).to(flat)
    weighted = flat * w
    return w.sum(), weighted.sum(dim=1), weighted @ flat.T


def weighted_stats(features: Tensor, weight: Tensor) -> FeatureStats:
    """The features' statistics within a region: means over positions weighted by ``weight``."""
    total, first, second = weighted_sums(features, weight)
    total = total.clamp_min(_EPS)
    return FeatureStats(first / total, second / total)


def masked_stats_of(
    network: Network, image: Tensor, weight: Tensor | None, names: set[str], tile: int = 0
) -> dict[str, FeatureStats]:
    """``stats_of`` (engine.run.targets) within ``weight`` (H x W, or None for all of the image)."""
    if weight is None:
        return stats_of(network, image, names, tile)
    height, width = image.shape[-2:]
    guides = layer_guides(weight[None], sorted(names), (width, height))
    if not tile or max(width, height) <= tile:
        features = network.features(image, names)
        return {name: weighted_stats(features[name], _fit(guides[name][0], features[name])) for name in names}
    sums: dict[str, list[Tensor | float]] = {}
    for part in tile_grid(width, height, tile, (0, 0)):
        y0, y1, x0, x1 = part.crop
        core = part.core_features(network.features(image[..., y0:y1, x0:x1], names))
        whole = part.in_whole_image(width, height)
        for name in names:
            guide = _window(guides[name][0], whole, name)
            parts = weighted_sums(core[name], _fit(guide, core[name]))
            before = sums.get(name, [0.0, 0.0, 0.0])
            sums[name] = [a + b for a, b in zip(before, parts, strict=True)]
    out = {}
    for name, (total, first, second) in sums.items():
        total = total.clamp_min(_EPS)
        out[name] = FeatureStats(first / total, second / total)
    return out


def _window(guide: Tensor, whole: Tile, name: str) -> Tensor:
    top, bottom, left, right = whole.feature_window(name, *guide.shape[-2:])
    return guide[..., top:bottom, left:right]


def _fit(guide: Tensor, features: Tensor) -> Tensor:
    """``guide`` on ``features``' grid: the same by construction; resampled if a layer ever floors
    differently (a guide that does not fit must not fail the run)."""
    shape = tuple(features.shape[-2:])
    if tuple(guide.shape[-2:]) == shape:
        return guide
    log.debug("guide %s resampled to the features' %s", tuple(guide.shape), shape)
    return F.adaptive_avg_pool2d(guide.reshape(1, 1, *guide.shape[-2:]), shape)[0, 0]


class _SymmetricGram(torch.autograd.Function):
    """A Aᵀ, differentiated as the symmetric product it is: one matrix product backward, where
    autograd's rule for A @ A.T takes two (one per operand). The guided terms compute several of
    these per layer; this keeps two regions about as cheap as one unguided Gram matrix."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(a)
        return a @ a.T

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (a,) = ctx.saved_tensors
        return (grad + grad.T) @ a


@dataclass(frozen=True)
class _Part:
    """Part of a window: a region (or, with ``region`` -1, what no painted region covers)."""

    region: int
    positions: Tensor | None  # indices into the window's flattened grid; None: all of them
    root: Tensor | None  # square roots of the weights at those positions; None: all of them are 1
    total: float  # Σ w
    share: float  # Σ w over the window's positions


@dataclass(frozen=True)
class _Plan:
    """How a window's regions are measured: ``explicit`` parts each on their own positions, and
    ``derived`` (when set) as the whole window's sums minus every explicit part's."""

    explicit: tuple[_Part, ...]
    derived: _Part | None = None


# Cost of a position read through a gather (index_select and its scatter backward) relative to a
# position of the whole window's Gram matrix: measured about 2 at relu1_1, 512 x 384 px (2 threads).
_GATHER_COST = 2.0


class GuidedStyleLoss(nn.Module):
    """One layer's style term over regions, each with its own target (its painting's statistics)."""

    def __init__(
        self,
        layer: str,
        terms: Sequence[nn.Module],
        guides: Tensor,
        strengths: Sequence[float],
        needs_mean: bool,
        window: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.layer = layer
        self.region_terms = nn.ModuleList(terms)
        self.guides = guides.detach().float().cpu()  # R x h x w over the whole image
        self.strengths = tuple(float(s) for s in strengths)
        self.needs_mean = needs_mean
        self.window = window
        self._plans: OrderedDict[tuple[int, int, int, int] | None, _Plan] = OrderedDict()
        self._device: torch.device | None = None

    def windowed(self, window: tuple[int, int, int, int]) -> GuidedStyleLoss:
        """The same term over a tile core's window (top, bottom, left, right) of this layer's grid.
        Shares its region terms and the plans it has made."""
        other = GuidedStyleLoss.__new__(GuidedStyleLoss)
        nn.Module.__init__(other)
        other.layer, other.region_terms, other.guides = self.layer, self.region_terms, self.guides
        other.strengths, other.needs_mean, other.window = self.strengths, self.needs_mean, window
        other._plans, other._device = self._plans, self._device
        return other

    def plan(self, device: torch.device) -> _Plan:
        """How this window's regions are measured (made once per window and device, then kept).

        Each painted region is read on the positions it touches. When the regions share out most of
        the window, the largest is cheaper as the rest: the whole window's sums (one Gram matrix
        without a gather) minus the other regions' and the uncovered positions'; exact, since every
        position's weights (the regions', and what none covers) add up to one.
        """
        if self._device != device:
            self._plans.clear()
            self._device = device
        key = self.window
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        guides = self.guides
        if key is not None:
            top, bottom, left, right = key
            guides = guides[:, top:bottom, left:right]
        flat = guides.reshape(len(guides), -1)
        positions = flat.shape[1]
        active = [r for r in range(len(flat)) if self.strengths[r] > 0 and float(flat[r].sum()) > 0]
        rest = (1.0 - flat[active].sum(dim=0)).clamp_min(0.0) if active else torch.ones(positions)
        touched = {r: int((flat[r] > 0).sum()) for r in active}
        plan = _Plan(tuple(_part(r, flat[r], positions, device) for r in active))
        # The rest is exact only where the weights add up to at most one (region_weights makes sure).
        shared_out = bool(active) and float(flat[active].sum(dim=0).max()) <= 1.0 + 1e-5
        if shared_out and (len(active) > 1 or float(rest.sum()) < 0.5 * positions):
            largest = max(active, key=lambda r: touched[r])
            uncovered = int((rest > 1e-6).sum())
            direct = _GATHER_COST * sum(touched.values())
            derived = positions + _GATHER_COST * (sum(touched.values()) - touched[largest] + uncovered)
            if derived < direct:
                others = [_part(r, flat[r], positions, device) for r in active if r != largest]
                if uncovered:
                    others.append(_part(-1, torch.where(rest > 1e-6, rest, 0.0), positions, device))
                total = float(flat[largest].sum())
                plan = _Plan(tuple(others), _Part(largest, None, None, total, total / positions))
        self._plans[key] = plan
        while len(self._plans) > _WINDOWS_KEPT:
            self._plans.popitem(last=False)
        return plan

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        current = features[self.layer]
        channels, rows, cols = current.shape[1:]
        by_position = _by_position(current)
        # (N, M) either way: a view of the position-major copy when the network runs channels-last.
        flat = by_position.T if by_position is not None else current.reshape(channels, -1).float()
        if self.window is None and tuple(self.guides.shape[-2:]) != (rows, cols):
            # Not expected (guides are made on the features' grid); resampled rather than failing.
            log.debug("guides %s resampled to the features' %s", tuple(self.guides.shape), (rows, cols))
            self.guides = F.adaptive_avg_pool2d(self.guides[None], (rows, cols))[0]
            self._plans.clear()
        plan = self.plan(flat.device)
        loss = flat.new_zeros(())
        whole_first: Tensor | None = None
        whole_second: Tensor | None = None
        if plan.derived is not None:
            whole_second = _SymmetricGram.apply(flat)
            whole_first = flat.sum(dim=1) if self.needs_mean else None
        for part in plan.explicit:
            if part.positions is None:
                values = flat
            elif by_position is not None:
                values = by_position.index_select(0, part.positions).T  # whole rows: a fast gather
            else:
                values = flat.index_select(1, part.positions)
            scaled = values if part.root is None else values * part.root
            second = _SymmetricGram.apply(scaled)
            first = None
            if self.needs_mean:
                first = values.sum(dim=1) if part.root is None else scaled @ part.root
            if part.region >= 0:
                loss = loss + self._score(part, first, second)
            if whole_second is not None:
                whole_second = whole_second - second
                if whole_first is not None and first is not None:
                    whole_first = whole_first - first
        if plan.derived is not None:
            assert whole_second is not None
            loss = loss + self._score(plan.derived, whole_first, whole_second)
        return loss

    def _score(self, part: _Part, first: Tensor | None, second: Tensor) -> Tensor:
        """A region's term from its sums: statistics normalised by its area, times share and strength."""
        mean = first / part.total if first is not None else second.new_zeros(())
        stats = FeatureStats(mean, second / part.total)
        term = self.region_terms[part.region]
        distance = term.distance(stats, part.total)  # type: ignore[operator]
        return (self.strengths[part.region] * part.share) * distance


def _by_position(features: Tensor) -> Tensor | None:
    """A channels-last (1, N, h, w) feature map as its (h·w, N) matrix, a view without a copy (float32
    features; None otherwise). On the CPU the network runs channels-last (engine.device): reading
    positions as whole rows there measured 0.36 s against 0.50 s for the five style layers of two
    regions at 512 x 384 px (one thread), where reshaping to (N, h·w) copies every map first."""
    if features.dtype != torch.float32 or features.is_contiguous():
        return None
    if not features.is_contiguous(memory_format=torch.channels_last):
        return None
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def _part(region: int, weights: Tensor, positions: int, device: torch.device) -> _Part:
    """A region (or the uncovered rest) of a window, from its weights over the window's positions."""
    total = float(weights.sum())
    touched = torch.nonzero(weights > 0).reshape(-1)
    if len(touched) >= _GATHER_BELOW * positions:
        roots = weights.sqrt()
        root = None if bool((weights == 1.0).all()) else roots.to(device)
        return _Part(region, None, root, total, total / positions)
    values = weights[touched]
    root = None if bool((values == 1.0).all()) else values.sqrt().to(device)
    return _Part(region, touched.to(device), root, total, total / positions)


def windowed_terms(
    terms: Sequence[tuple[nn.Module, float]], whole: Tile
) -> list[tuple[nn.Module, float]]:
    """A level's style terms for one tile (``whole``: its core seen from the whole image)."""
    out: list[tuple[nn.Module, float]] = []
    for term, weight in terms:
        if isinstance(term, GuidedStyleLoss):
            term = term.windowed(whole.feature_window(term.layer, *term.guides.shape[-2:]))
        out.append((term, weight))
    return out


def painted_area(regions: Regions, strengths: Sequence[float], size: tuple[int, int]) -> Tensor | None:
    """Where some style is painted, 0..1 per pixel at (width, height) as (1, 1, H, W); None without
    region masks (every pixel is painted)."""
    weights = regions.weights(size)
    if weights is None:
        return None
    active = [weight for weight, strength in zip(weights, strengths, strict=True) if strength > 0]
    area = np.clip(np.sum(active, axis=0), 0.0, 1.0) if active else np.zeros(weights.shape[1:], np.float32)
    return torch.from_numpy(np.ascontiguousarray(area, dtype=np.float32))[None, None]


def with_photo_outside(image: Tensor, photo: Tensor, area: Tensor | None) -> Tensor:
    """``image`` where styles are painted, the photo where none is (a grey edge mixes the two).

    Applied at the start of every level, with ``gate_gradient`` during it: a departure from the
    paper, where only the loss is guided. Measured on a 96 x 64 picture with the top half masked
    (tests/engine/test_regions.py, tiny network): with the loss alone the unpainted half moved by
    0.077 (mean absolute, 0..1) against 0.108 for the painted half under Adam at rate 0.01, and by
    0.036 against 0.110 under L-BFGS: a deep layer's positions inside a region see far beyond it,
    their gradient reaches the unpainted pixels, and Adam, which normalises every pixel's step,
    moves them by its full rate. The paper's remedy, masks eroded by each layer's receptive field,
    would take the deep layers' style from every region narrower than about 200 px. Freezing the
    unpainted pixels instead changes no optimum where a style is painted at all (a pixel whose
    gradient is scaled by its coverage settles where it would have), and keeps the photo exactly
    where none is.
    """
    if area is None:
        return image
    return photo + area * (image - photo)


def keep_photo_unpainted(
    image: Tensor, content: LoadedImage, regions: Regions, strengths: Sequence[float]
) -> Tensor:
    """A level's starting image (1, 3, H, W) with the photo wherever no style is painted."""
    size = (image.shape[-1], image.shape[-2])
    area = painted_area(regions, strengths, size)
    if area is None:
        return image
    return with_photo_outside(image, resize(to_tensor(content.rgb), size), area)


def gate_gradient(gradient: Tensor, area: Tensor) -> Tensor:
    """A pixel's gradient scaled by how much of it is painted: unpainted pixels do not move."""
    return gradient * area.to(gradient)


def painting_tensor(style: LoadedImage, level_long_edge: int, params: StyleParams) -> Tensor:
    """The painting as the style targets see it at this level (as engine.run.targets does)."""
    long_edge = max(round(level_long_edge * params.style_scale), smallest_long_edge(style.size))
    return resize(to_tensor(style.rgb), output_size(style.size, long_edge))


def level_style_terms(
    network: Network,
    styles: Sequence[LoadedImage],
    blend: Sequence[float],
    regions: Regions,
    strengths: Sequence[float],
    params: StyleParams,
    level_long_edge: int,
    size: tuple[int, int],
    tile: int = 0,
) -> list[tuple[nn.Module, float]]:
    """The style terms of a level of ``size`` (width, height): as engine.run.targets makes them
    without masks. Style masks alone change only the targets (each painting's statistics within
    its mask, blended as usual); region masks make one guided term per layer, each region with its
    own painting.
    """
    names = {name for name, _ in params.active_style_layers}
    if not names:
        return []
    if not regions.guided:
        return style_terms(style_targets(network, styles, blend, params, level_long_edge, tile), params)
    per_style: list[dict[str, FeatureStats]] = []
    for index, style in enumerate(styles):
        if regions.masks and strengths[index] <= 0:
            per_style.append({})  # a region at strength 0 keeps the photo: no target to compute
            continue
        image = painting_tensor(style, level_long_edge, params)
        weight = regions.style_weight(index, (image.shape[-1], image.shape[-2]))
        mask = None if weight is None else torch.from_numpy(weight)
        per_style.append(masked_stats_of(network, image, mask, names, tile))
    weights = regions.weights(size)
    if weights is None:
        targets = {name: blended_stats([stats[name] for stats in per_style], blend) for name in names}
        return style_terms(targets, params)
    guides = layer_guides(torch.from_numpy(np.ascontiguousarray(weights)), sorted(names), size)
    loss_type = STYLE_LOSSES[params.style_statistic]
    needs_mean = params.style_statistic is not StyleStatistic.GRAM
    terms: list[tuple[nn.Module, float]] = []
    for name, layer_weight in params.active_style_layers:
        # A region at strength 0 gets a placeholder term that is never evaluated (its share is 0).
        region_terms = [
            loss_type(name, stats[name], params.loss_convention) if stats else nn.Identity()
            for stats in per_style
        ]
        terms.append((GuidedStyleLoss(name, region_terms, guides[name], strengths, needs_mean), layer_weight))
    return terms
