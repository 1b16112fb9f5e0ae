"""Colour control (Gatys et al. 2017, "Controlling perceptual factors in neural style transfer").

Three choices of whose colours the picture has, plus a blend after any run:

- ``painting`` (the paper's plain method): the painting's colours come with its texture.
- ``photo``: luminance-only transfer. Photo and painting are reduced to their luminance (YIQ's Y,
  the space the paper used), the painting's luminance matched to the photo's in mean and spread so
  its contrast fits; the run repaints the luminance, and the result takes the photo's chroma (I, Q).
- ``match``: the painting is recoloured to the photo's palette before the run: its pixels' mean and
  covariance are moved to the photo's (the colour-histogram-matching variant of the paper, with the
  symmetric matrix square root, which keeps hues from rotating the way a Cholesky factor can).

``with_photo_chroma`` blends the photo's chroma into any result afterwards, without re-running.
Everything here is numpy on float32 H x W x 3 sRGB in [0, 1]; no torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# NTSC YIQ from (gamma-encoded) sRGB, as in the paper's luminance-only transfer.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return (yiq.astype(np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def _resized(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``rgb`` at (height, width) ``shape``, float32 planes resized with Lanczos (no 8-bit rounding)."""
    if rgb.shape[:2] == shape:
        return rgb
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(rgb[:, :, c], dtype=np.float32)).resize(
            (shape[1], shape[0]), Image.Resampling.LANCZOS
        ))
        for c in range(3)
    ]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """The luminance as a grey RGB image (Y in all three channels)."""
    y = rgb_to_yiq(rgb)[:, :, 0]
    return np.ascontiguousarray(np.repeat(np.clip(y, 0.0, 1.0)[:, :, None], 3, axis=2))


def luminance_matched(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The painting's luminance with the photo's mean and standard deviation, as a grey RGB image."""
    style_y = rgb_to_yiq(style)[:, :, 0]
    content_y = rgb_to_yiq(content)[:, :, 0]
    spread = float(style_y.std())
    scale = float(content_y.std()) / spread if spread > 1e-6 else 1.0
    matched = (style_y - float(style_y.mean())) * scale + float(content_y.mean())
    return np.ascontiguousarray(np.repeat(np.clip(matched, 0.0, 1.0)[:, :, None], 3, axis=2))


def with_photo_chroma(result: np.ndarray, photo: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """``result`` with its chroma (YIQ's I and Q) moved ``amount`` of the way to the photo's.

    At 1 the picture has exactly the photo's chroma and the result's luminance.
    """
    if amount <= 0.0:
        return result
    target = rgb_to_yiq(_resized(photo, result.shape[:2]))
    mixed = rgb_to_yiq(result)
    mixed[:, :, 1:] = (1.0 - amount) * mixed[:, :, 1:] + amount * target[:, :, 1:]
    return np.ascontiguousarray(np.clip(yiq_to_rgb(mixed), 0.0, 1.0), dtype=np.float32)


def _sqrt_and_inverse(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(covariance)
    values = np.clip(values, 1e-8, None)
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    inverse = vectors @ np.diag(1.0 / np.sqrt(values)) @ vectors.T
    return root, inverse


def matched_colours(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The painting recoloured so its pixels have the photo's mean colour and colour covariance."""
    source = style.reshape(-1, 3).astype(np.float64)
    target = content.reshape(-1, 3).astype(np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_root, source_inverse = _sqrt_and_inverse(np.cov(source, rowvar=False) + 1e-6 * np.eye(3))
    target_root, _ = _sqrt_and_inverse(np.cov(target, rowvar=False) + 1e-6 * np.eye(3))
    transform = target_root @ source_inverse
    recoloured = (source - source_mean) @ transform.T + target_mean
    return np.ascontiguousarray(np.clip(recoloured, 0.0, 1.0).reshape(style.shape), dtype=np.float32)
