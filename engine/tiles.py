"""Tile geometry for optimising an image larger than memory, in overlapping tiles. No torch here.

A tile has a core (the pixels it updates) and a crop (the core plus context, which the network
sees). Offsets and margins are multiples of the deepest stride (16), so a core maps to whole
feature positions at every layer; the grid moves every iteration so seams never settle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.layers import DEEPEST_STRIDE, STRIDE

# Pixels of context around each tile core: relu4_2's receptive field (42 px radius) fits, so a
# core's content features are exact.
TILE_MARGIN = 4 * DEEPEST_STRIDE


@dataclass(frozen=True)
class Tile:
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
        step = STRIDE[layer]
        # A thin core at the image's edge can fall past the last (floored) feature position:
        # keep at least the nearest one rather than an empty slice.
        top, left = min(y0 // step, rows - 1), min(x0 // step, cols - 1)
        bottom, right = min(max(top + 1, -(-y1 // step)), rows), min(max(left + 1, -(-x1 // step)), cols)
        return top, bottom, left, right

    def core_features(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """Each layer's features (arrays shaped (..., rows, cols)) over the core only."""
        out = {}
        for name, value in features.items():
            top, bottom, left, right = self.feature_window(name, value.shape[-2], value.shape[-1])
            out[name] = value[..., top:bottom, left:right]
        return out

    def in_whole_image(self, width: int, height: int) -> Tile:
        """The same core seen from the whole image: its windows index whole-image feature maps."""
        return Tile(self.core, (0, height, 0, width))


def tile_grid(
    width: int, height: int, tile: int, offset: tuple[int, int], margin: int = TILE_MARGIN
) -> list[Tile]:
    """Tiles covering the image, the grid shifted by ``offset`` so seams move every iteration."""
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
            tiles.append(Tile((y0, y1, x0, x1), crop))
    return tiles
