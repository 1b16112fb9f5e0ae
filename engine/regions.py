"""Regions: where each painting goes, and which part of a painting its style comes from.

Gatys et al. 2017 ("Controlling perceptual factors in neural style transfer", spatial control):
a job may carry one mask per style (white: that style is painted there, grey: partly, black: not
at all) and, per painting, a style mask (which part of the painting the style is taken from).
Where no mask is white the photo stays as it is: only the content term acts there, and a grey
edge makes a soft transition.

This module reads and checks masks (any image; its grey value times its opacity is the weight,
so a mask drawn on a transparent layer works too) and puts them at a level's size. The guided
statistics and loss that use them are in engine.guided.

Overlapping regions: where the masks add up to more than one they are divided by their sum, so
every pixel feels at most the style pressure of a run without masks, shared between the styles
painted there; where they add up to less, the rest of the pixel keeps the photo.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import InputError
from engine.imageio import LoadedImage, load_image

log = logging.getLogger(__name__)

# BT.709 luminance of the mask's grey: any colour drawn in a paint program counts by its brightness.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# A mask whose proportions differ from the photo's by more than this is stretched, with a warning.
_ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Mask:
    """One mask as the engine uses it: its weights at the file's own size."""

    path: Path | None
    # float32 H x W in [0, 1]: 1 where the style (or the painting's part) applies fully.
    weight: np.ndarray
    sha256: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.weight.shape[1]), int(self.weight.shape[0])

    @property
    def coverage(self) -> float:
        """The share of the picture the mask covers, 0..1."""
        return float(self.weight.mean())


def mask_weight(image: LoadedImage) -> np.ndarray:
    """A mask image's weights: its luminance, times its opacity where it has transparency."""
    weight = np.clip(image.rgb @ _LUMA, 0.0, 1.0).astype(np.float32)
    if image.alpha is not None:
        weight = weight * image.alpha
    return np.ascontiguousarray(weight, dtype=np.float32)


def mask_from_image(image: LoadedImage) -> Mask:
    return Mask(image.path, mask_weight(image), image.sha256)


def load_mask(path: str | Path) -> Mask:
    """Read a mask file; anything that is not a readable image is one ``InputError`` naming it."""
    return mask_from_image(load_image(path))


def check_proportions(mask: Mask, size: tuple[int, int], what: str = "mask") -> None:
    """Log a warning when a mask has other proportions than the picture it is stretched over."""
    mask_ratio = mask.size[0] / mask.size[1]
    ratio = size[0] / size[1]
    if abs(mask_ratio / ratio - 1.0) > _ASPECT_TOLERANCE:
        log.warning(
            "%s: the %s is %d x %d px, the picture %d x %d px: it is stretched to fit",
            mask.path if mask.path is not None else what, what, *mask.size, *size,
        )  # fmt: skip


def resized_weight(weight: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask's weights at (width, height): bilinear, averaging when reduced (Pillow's filters
    are antialiased), so a hard edge becomes at most a pixel of grey, never a ringing halo."""
    width, height = size
    if weight.shape == (height, width):
        return weight
    image = Image.fromarray(np.ascontiguousarray(weight, dtype=np.float32))
    resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.ascontiguousarray(np.clip(resized, 0.0, 1.0))


def region_weights(masks: Sequence[Mask], size: tuple[int, int]) -> np.ndarray:
    """The regions' weights at (width, height), R x H x W, overlaps divided by their sum."""
    stack = np.stack([resized_weight(mask.weight, size) for mask in masks])
    total = stack.sum(axis=0)
    return np.ascontiguousarray(stack / np.maximum(total, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class Regions:
    """A job's masks, loaded: one per style (or none), and a style mask per painting (or None)."""

    masks: tuple[Mask, ...] = ()
    style_masks: tuple[Mask | None, ...] = ()

    @property
    def guided(self) -> bool:
        """Whether the run needs guided style terms at all."""
        return bool(self.masks) or any(mask is not None for mask in self.style_masks)

    def weights(self, size: tuple[int, int]) -> np.ndarray | None:
        """Where each style goes at (width, height), R x H x W; None without masks (everywhere)."""
        return region_weights(self.masks, size) if self.masks else None

    def style_weight(self, index: int, size: tuple[int, int]) -> np.ndarray | None:
        """Which part of painting ``index``, at (width, height), gives its style; None: all of it."""
        mask = self.style_masks[index] if index < len(self.style_masks) else None
        return None if mask is None else resized_weight(mask.weight, size)

    def cropped_style(self, index: int, rgb: np.ndarray) -> np.ndarray:
        """Painting ``index`` cut to the bounding box of what its style mask selects (for the instant
        draft, whose style predictor sees a rectangle); the whole painting without a style mask."""
        weight = self.style_weight(index, (rgb.shape[1], rgb.shape[0]))
        if weight is None:
            return rgb
        rows, cols = np.nonzero(weight >= 0.5)
        if rows.size == 0:
            return rgb
        return rgb[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    def hashes(self) -> dict[str, str]:
        masks = (*self.masks, *self.style_masks)
        return {str(mask.path): mask.sha256 for mask in masks if mask is not None and mask.path is not None}


def load_regions(
    masks: Sequence[Path],
    style_masks: Sequence[Path | None],
    decoded: Mapping[Path, LoadedImage] | None = None,
) -> Regions:
    """Read a job's masks (or take the already decoded files from ``decoded``)."""

    def load(path: Path) -> Mask:
        already = (decoded or {}).get(Path(path))
        return mask_from_image(already) if already is not None else load_mask(path)

    return Regions(
        tuple(load(path) for path in masks),
        tuple(None if path is None else load(path) for path in style_masks),
    )


def check_style_mask(mask: Mask) -> None:
    """A style mask that selects nothing leaves no style to take: refused before the run."""
    if float(mask.weight.max()) <= 0.0:
        raise InputError("the style mask is black everywhere: it selects no part of the painting", mask.path)


def composite(
    pictures: Sequence[np.ndarray], photo: np.ndarray, weights: np.ndarray, strengths: Sequence[float]
) -> np.ndarray:
    """Pictures (H x W x 3 each, one per region) laid over the photo through the regions' weights
    (R x H x W, summing to at most 1), each at its strength; the rest of every pixel is the photo."""
    out = photo.astype(np.float32, copy=True)
    for picture, weight, strength in zip(pictures, weights, strengths, strict=True):
        amount = (weight * np.float32(strength))[:, :, None]
        out += amount * (picture - photo)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)
