"""What the losses aim at: the paintings' Gram matrices and the photo's features, whole or in tiles."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from engine.imageio import LoadedImage
from engine.layers import STRIDE
from engine.losses import (
    STYLE_LOSSES,
    ContentLoss,
    FeatureStats,
    StyleTransferLoss,
    TVLoss,
    blended_stats,
    feature_stats,
)
from engine.params import StyleParams
from engine.plan import output_size, smallest_long_edge
from engine.run.network import Network
from engine.run.tensors import resize, to_tensor
from engine.tiles import tile_grid


def style_targets(
    network: Network,
    styles: Sequence[LoadedImage],
    blend: Sequence[float],
    params: StyleParams,
    level_long_edge: int,
    tile: int = 0,
) -> dict[str, FeatureStats]:
    """Blended feature statistics (mean and per-position Gram matrix) of the style images, by layer.

    The style is seen at a size tied to the *current* long edge, so its brush marks keep the
    same proportion to the picture at every pyramid level.  With tiles, the Gram sums are
    accumulated tile by tile: the statistics still come from the whole painting.
    """
    names = {name for name, _ in params.active_style_layers}
    if not names:
        return {}
    style_long_edge = round(level_long_edge * params.style_scale)
    per_style: list[dict[str, FeatureStats]] = []
    for style in styles:
        # A thin painting is seen a little larger rather than thinner than the network allows.
        long_edge = max(style_long_edge, smallest_long_edge(style.size))
        style_tensor = resize(to_tensor(style.rgb), output_size(style.size, long_edge))
        per_style.append(stats_of(network, style_tensor, names, tile))
    return {name: blended_stats([stats[name] for stats in per_style], blend) for name in names}


def stats_of(network: Network, image: Tensor, names: set[str], tile: int = 0) -> dict[str, FeatureStats]:
    """Feature statistics of ``image`` by layer; with ``tile``, accumulated over tile cores."""
    height, width = image.shape[-2:]
    if not tile or max(width, height) <= tile:
        features = network.features(image, names)
        return {name: feature_stats(features[name]) for name in names}
    sums: dict[str, FeatureStats] = {}
    counts = dict.fromkeys(names, 0)
    for part in tile_grid(width, height, tile, (0, 0)):
        y0, y1, x0, x1 = part.crop
        core = part.core_features(network.features(image[..., y0:y1, x0:x1], names))
        for name in names:
            positions = core[name].shape[-1] * core[name].shape[-2]
            weighted = feature_stats(core[name]).scaled(positions)
            sums[name] = weighted if name not in sums else sums[name].plus(weighted)
            counts[name] += positions
    return {name: sums[name].scaled(1 / counts[name]) for name in names}


def stitched_features(network: Network, image: Tensor, names: set[str], tile: int) -> dict[str, Tensor]:
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
        features = network.features(image[..., y0:y1, x0:x1], names)
        whole = part.in_whole_image(width, height)
        for name, value in features.items():
            if name not in maps:
                step = STRIDE[name]
                maps[name] = torch.zeros(1, value.shape[1], height // step, width // step)
            top, bottom, left, right = part.feature_window(name, *value.shape[-2:])
            g_top, _, g_left, _ = whole.feature_window(name, *maps[name].shape[-2:])
            rows, cols = bottom - top, right - left
            maps[name][..., g_top : g_top + rows, g_left : g_left + cols] = (
                value[..., top:bottom, left:right].float().cpu()
            )
    return maps


def content_features(network: Network, content: LoadedImage, params: StyleParams, size: tuple[int, int]):
    """The photo's features at the content layers for an image of ``size``, or None without them."""
    names = {name for name, _ in params.active_content_layers}
    if not names:
        return None
    return network.features(resize(to_tensor(content.rgb), size), names)


def style_terms(targets: dict[str, FeatureStats], params: StyleParams) -> list[tuple[nn.Module, float]]:
    loss_type = STYLE_LOSSES[params.style_statistic]
    return [
        (loss_type(name, targets[name], params.loss_convention), weight)
        for name, weight in params.active_style_layers
    ]


def make_loss(
    network: Network,
    params: StyleParams,
    content: dict[str, Tensor] | None,
    styles: list[tuple[nn.Module, float]],
) -> StyleTransferLoss:
    """The whole objective: weighted content, style and total-variation terms, on the network's device."""
    content_terms = [
        (ContentLoss(name, content[name], params.loss_convention), weight)
        for name, weight in (params.active_content_layers if content is not None else ())
    ]
    return StyleTransferLoss(
        content_terms,
        styles,
        TVLoss(params.tv_norm),
        params.content_weight,
        params.effective_style_weight,
        params.tv_weight,
    ).to(network.device)
