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


@dataclass(frozen=True)
class _Part:
    """One region within one window: the positions it touches, their weights, its share."""

    region: int
    positions: Tensor | None  # indices into the window's flattened grid; None: all of them
    weight: Tensor  # the weights at those positions
    total: float  # Σ w
    share: float  # Σ w over the window's positions


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
        self._parts: OrderedDict[tuple[int, int, int, int] | None, list[_Part]] = OrderedDict()
        self._device: torch.device | None = None

    def windowed(self, window: tuple[int, int, int, int]) -> GuidedStyleLoss:
        """The same term over a tile core's window (top, bottom, left, right) of this layer's grid.
        Shares its region terms and the positions it has gathered."""
        other = GuidedStyleLoss.__new__(GuidedStyleLoss)
        nn.Module.__init__(other)
        other.layer, other.region_terms, other.guides = self.layer, self.region_terms, self.guides
        other.strengths, other.needs_mean, other.window = self.strengths, self.needs_mean, window
        other._parts, other._device = self._parts, self._device
        return other

    def parts(self, device: torch.device) -> list[_Part]:
        """Each region that touches the window, with its positions gathered (cached per window)."""
        if self._device != device:
            self._parts.clear()
            self._device = device
        key = self.window
        if key in self._parts:
            self._parts.move_to_end(key)
            return self._parts[key]
        guides = self.guides
        if key is not None:
            top, bottom, left, right = key
            guides = guides[:, top:bottom, left:right]
        positions = guides.shape[-1] * guides.shape[-2]
        parts = []
        for region, guide in enumerate(guides.reshape(len(guides), -1)):
            total = float(guide.sum())
            if total <= 0.0 or self.strengths[region] <= 0.0:
                continue
            touched = torch.nonzero(guide > 0).reshape(-1)
            share = total / positions
            if len(touched) < _GATHER_BELOW * positions:
                parts.append(_Part(region, touched.to(device), guide[touched].to(device), total, share))
            else:
                parts.append(_Part(region, None, guide.to(device), total, share))
        self._parts[key] = parts
        while len(self._parts) > _WINDOWS_KEPT:
            self._parts.popitem(last=False)
        return parts

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        current = features[self.layer]
        channels, rows, cols = current.shape[1:]
        flat = current.reshape(channels, -1).float()
        if self.window is None and tuple(self.guides.shape[-2:]) != (rows, cols):
            # Not expected (guides are made on the features' grid); resampled rather than failing.
            log.debug("guides %s resampled to the features' %s", tuple(self.guides.shape), (rows, cols))
            self.guides = F.adaptive_avg_pool2d(self.guides[None], (rows, cols))[0]
            self._parts.clear()
        total = flat.new_zeros(())
        for part in self.parts(flat.device):
            values = flat if part.positions is None else flat.index_select(1, part.positions)
            weighted = values * part.weight
            gram = (weighted @ values.T) / part.total
            mean = weighted.sum(dim=1) / part.total if self.needs_mean else flat.new_zeros(())
            term = self.region_terms[part.region]
            distance = term.distance(FeatureStats(mean, gram), part.total)  # type: ignore[operator]
            total = total + (self.strengths[part.region] * part.share) * distance
        return total


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
