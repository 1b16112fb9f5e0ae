"""One strength control for the optimisation: 1 is the recipe's balance, 0 the photo, even in between."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.params import STRENGTH_SHARES, StyleJob, StyleParams, style_share
from engine.records import Finished
from engine.stylize import stylize
from engine.weights import random_weights


def test_the_style_weight_follows_the_measured_curve() -> None:
    for strength, share in STRENGTH_SHARES:
        weight = StyleParams(style_weight=10.0, strength=strength).effective_style_weight
        assert weight == pytest.approx(10 * share)
    assert StyleParams(strength=0.0).effective_style_weight == 0.0
    assert StyleParams(strength=0.0).active_style_layers == ()


def test_the_share_rises_smoothly_from_zero_with_no_jump_off_the_left_end() -> None:
    grid = np.linspace(0.0, 1.0, 401)
    shares = np.array([style_share(float(s)) for s in grid])
    assert shares[0] == 0.0 and shares[-1] == 1.0
    assert np.all(np.diff(shares) > 0)
    # The old mapping (100 ** (s - 1)) jumped from 0 to 0.01 at the first notch.
    assert style_share(0.05) < 0.001
    # Geometric between knots: halfway between 0.5 and 0.625 is the two shares' geometric mean.
    assert style_share(0.625) == pytest.approx(0.114)
    assert style_share(0.5625) == pytest.approx((0.0515 * 0.114) ** 0.5)


def test_strength_zero_needs_a_content_weight() -> None:
    with pytest.raises(InputError, match="strength 0"):
        StyleParams(strength=0.0, content_weight=0.0)


def _run(tmp_path: Path, strength: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    photo = np.stack([xx / 64, yy / 48, 0.5 + 0 * xx], -1)
    Image.fromarray((photo * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    params = StyleParams(size=64, iterations=8, strength=strength, style_weight=3.0)
    records = list(stylize(StyleJob(tmp_path / "photo.png", (tmp_path / "noise.png",), params),
                           weights=random_weights(width_divisor=16, seed=0)))  # fmt: skip
    assert isinstance(records[-1], Finished)
    return records[-1].image, photo.astype(np.float32)


def test_strength_moves_the_picture_from_the_photo_to_the_painting(tmp_path: Path) -> None:
    distances = []
    for strength in (0.0, 0.5, 1.0):
        image, photo = _run(tmp_path, strength)
        distances.append(float(np.abs(image - photo).mean()))
    assert distances[0] < 0.01  # the photo itself (to 8-bit rounding and a little smoothing)
    assert distances[0] < distances[1] < distances[2], distances
