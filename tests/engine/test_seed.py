"""The seed matters from the photo too: a little seeded noise in the start (engine.stylize.initial_image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.params import InitMode, StyleJob, StyleParams
from engine.recipe import build_recipe
from engine.records import Finished
from engine.stylize import START_NOISE_LEVELS, stylize
from engine.weights import random_weights


def _write(path: Path, seed: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([xx / size[0], yy / size[1], (xx + yy) / sum(size)], axis=-1)
    Image.fromarray((np.clip(base + rng.normal(0, 0.15, base.shape), 0, 1) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights():
    return random_weights(width_divisor=16, seed=0)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "photo.png", 1, (40, 30)), _write(tmp_path / "painting.png", 2, (36, 36))


def _picture(inputs, weights, **changes) -> Finished:
    params = StyleParams(size=32, iterations=6, device="cpu", init=InitMode.CONTENT, **changes)
    records = list(stylize(StyleJob(inputs[0], (inputs[1],), params), weights=weights))
    assert isinstance(records[-1], Finished)
    return records[-1]


def test_two_seeds_from_the_photo_give_different_pictures_and_one_seed_the_same(inputs, weights) -> None:
    first = _picture(inputs, weights, seed=1)
    again = _picture(inputs, weights, seed=1)
    other = _picture(inputs, weights, seed=2)
    np.testing.assert_array_equal(first.image, again.image)
    difference = np.abs(first.image - other.image) * 255
    assert difference.mean() > 0.05, difference.mean()
    # ... and the recipe says what, besides the seed, makes it again.
    recipe = build_recipe(first)
    assert recipe["extra"]["start_noise_levels"] == START_NOISE_LEVELS
    assert recipe["job"]["params"]["seed"] == 1


def test_the_start_noise_is_a_few_levels_of_the_photo(inputs, weights) -> None:
    # The start is the photo to within a few levels: uniform noise of at most START_NOISE_LEVELS.
    from engine.stylize import _coloured, _load_inputs, initial_image

    job = StyleJob(inputs[0], (inputs[1],), StyleParams(size=32, seed=9))
    loaded = _coloured(_load_inputs(job, None), job.params)
    noisy = initial_image(loaded, job.params, (32, 24))
    clean = initial_image(loaded, job.params.replace(strength=0.0), (32, 24))  # no style: no noise
    difference = (noisy - clean).abs() * 255
    assert 0.5 < float(difference.mean()) <= START_NOISE_LEVELS
    assert float(difference.max()) <= START_NOISE_LEVELS + 1e-3


def test_without_style_the_photo_is_left_alone(inputs, weights) -> None:
    # Strength 0 is the photo itself: no seed has anything to vary, so no noise is added.
    finished = _picture(inputs, weights, seed=1, strength=0.0)
    assert "start_noise_levels" not in build_recipe(finished).get("extra", {})
    assert np.array_equal(finished.image, _picture(inputs, weights, seed=2, strength=0.0).image)
