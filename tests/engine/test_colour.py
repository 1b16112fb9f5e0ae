"""Colour control: luminance-only transfer, palette matching, and the photo's chroma after a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import colour
from engine.params import ColorMode, StyleJob, StyleParams
from engine.records import Finished
from engine.stylize import stylize
from engine.weights import random_weights


def lab_ab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB a*, b* (D65) of sRGB pixels: the perceptual chroma the tests measure."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    ).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def photo(height: int = 48, width: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    planes = [0.2 + 0.6 * xx / width, 0.3 + 0.4 * yy / height, 0.8 - 0.5 * xx / width]
    return np.stack(planes, -1).astype(np.float32)


def painting(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reds = rng.random((40, 40, 3)).astype(np.float32) * np.array([1.0, 0.2, 0.1], dtype=np.float32)
    return reds


def test_full_photo_chroma_reproduces_the_photos_chroma_exactly() -> None:
    picture = photo(40, 40)
    # A repainted result of mid luminance: the photo's chroma fits in the gamut at every pixel.
    rng = np.random.default_rng(2)
    result = np.clip(0.45 + 0.1 * rng.random((40, 40, 3)), 0, 1).astype(np.float32)
    blended = colour.with_photo_chroma(result, picture, 1.0)
    got, want = colour.rgb_to_yiq(blended), colour.rgb_to_yiq(picture)
    np.testing.assert_allclose(got[..., 1:], want[..., 1:], atol=1e-5)
    np.testing.assert_allclose(got[..., 0], colour.rgb_to_yiq(result)[..., 0], atol=1e-5)
    assert colour.with_photo_chroma(result, picture, 0.0) is result


def test_match_gives_the_painting_the_photos_mean_and_covariance() -> None:
    recoloured = colour.matched_colours(painting(), photo())
    target = photo().reshape(-1, 3)
    got = recoloured.reshape(-1, 3)
    np.testing.assert_allclose(got.mean(axis=0), target.mean(axis=0), atol=0.03)
    np.testing.assert_allclose(np.cov(got, rowvar=False), np.cov(target, rowvar=False), atol=0.01)


def test_luminance_matched_has_the_photos_mean_and_spread() -> None:
    grey = colour.luminance_matched(painting(), photo())
    y = colour.rgb_to_yiq(photo())[..., 0]
    assert grey[..., 0].mean() == pytest.approx(float(y.mean()), abs=0.01)
    assert grey[..., 0].std() == pytest.approx(float(y.std()), abs=0.01)
    assert np.array_equal(grey[..., 0], grey[..., 1])


def _run(tmp_path: Path, **params: object) -> np.ndarray:
    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((painting() * 255).astype(np.uint8)).save(tmp_path / "red.png")
    params_ = StyleParams(size=64, iterations=6, **params)
    job = StyleJob(tmp_path / "photo.png", (tmp_path / "red.png",), params_)
    records = list(stylize(job, weights=random_weights(width_divisor=16, seed=0)))
    assert isinstance(records[-1], Finished)
    return records[-1].image


def test_the_photos_chroma_survives_colors_photo(tmp_path: Path) -> None:
    target = lab_ab(photo())
    painted = np.abs(lab_ab(_run(tmp_path, style_weight=1e3)) - target).mean()
    kept = np.abs(lab_ab(_run(tmp_path, style_weight=1e3, colors=ColorMode.PHOTO)) - target).mean()
    assert kept < 0.35 * painted, (kept, painted)
    assert kept < 6.0  # a* b* units: a just-noticeable difference is about 2


def test_photo_colors_one_gives_the_photos_chroma_after_any_run(tmp_path: Path) -> None:
    image = _run(tmp_path, style_weight=1e3, photo_colors=1.0)
    got, want = colour.rgb_to_yiq(image)[..., 1:], colour.rgb_to_yiq(photo())[..., 1:]
    np.testing.assert_allclose(got, want, atol=0.02)  # 8-bit input and clipping at the gamut's edge
