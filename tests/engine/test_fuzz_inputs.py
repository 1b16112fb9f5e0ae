"""Property-based fuzzing of every parser that reads a file a stranger could send.

Image decoding (random bytes; bit flips, truncations, insertions and overwritten length fields of
small valid PNG, JPEG, WebP, TIFF and BMP files), recipe reading (the same mutations of files that
carry a recipe, and of sidecar JSON), and format_recipe / job_from_recipe on any JSON value. Each
must end in a result or an InputError whose message is one line with no raw control characters.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.encode import save_image
from engine.errors import InputError
from engine.imageio import LoadedImage, load_image, load_image_bytes
from engine.metadata import read_recipe, sidecar_path
from engine.params import StyleJob
from engine.recipe import format_recipe, job_from_recipe
from engine.text import printable

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_one_inert_line(error: InputError) -> None:
    message = str(error)
    assert message and "\n" not in message and printable(message) == message, repr(message)


# -- seeds: tiny valid files ---------------------------------------------------------------------------


def _pixels(height: int = 6, width: int = 5) -> np.ndarray:
    return np.random.default_rng(0).random((height, width, 3)).astype(np.float32)


def _pillow_files() -> dict[str, bytes]:
    rgb = Image.fromarray((_pixels() * 255).astype(np.uint8))
    rgba = rgb.convert("RGBA")
    files: dict[str, bytes] = {}
    for name, image, fmt, options in [
        ("png", rgb, "PNG", {}),
        ("png-rgba", rgba, "PNG", {}),
        ("png-palette", rgb.convert("P"), "PNG", {"transparency": 0}),
        ("jpeg", rgb, "JPEG", {"quality": 80}),
        ("jpeg-exif", rgb, "JPEG", {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03"
                                     b"\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"}),
        ("webp", rgb, "WEBP", {"quality": 80}),
        ("webp-lossless", rgba, "WEBP", {"lossless": True}),
        ("tiff", rgb, "TIFF", {}),
        ("tiff-deflate", rgba, "TIFF", {"compression": "tiff_deflate"}),
        ("bmp", rgb, "BMP", {}),
    ]:  # fmt: skip
        out = io.BytesIO()
        image.save(out, fmt, **options)
        files[name] = out.getvalue()
    out = io.BytesIO()
    samples = (_pixels() * 65535).astype(np.uint16)
    tifffile.imwrite(out, samples, photometric="rgb", compression="zlib", predictor=True, metadata=None)
    files["tiff-16"] = out.getvalue()
    return files


IMAGES = _pillow_files()
RECIPE = {
    "painterly": "0.1.0",
    "recipe_version": 1,
    "job": {"content": "a.png", "styles": ["b.png"], "blend": [1.0], "params": {"seed": 3}},
    "losses": {"style": 1.5},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def recipe_files(folder: Path) -> dict[str, bytes]:
    """Files saved by Painterly with a recipe, as bytes."""
    files = {}
    for name, options in [
        ("r.png", {}),
        ("r16.png", {"bit_depth": 16}),
        ("r.jpg", {}),
        ("r.webp", {}),
        ("r.tif", {}),
        ("r16.tif", {"bit_depth": 16}),
    ]:
        path = save_image(folder / name, _pixels(), recipe=RECIPE, **options)
        files[name] = path.read_bytes()
        path.unlink()
    return files


# -- mutations --------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed file with a few bit flips, overwritten length-like fields, insertions or a cut."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "field", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "field":
            value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]))
            data[at : at + 4] = value.to_bytes(4, draw(st.sampled_from(["big", "little"])))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return name, bytes(data)


def _decoded_or_one_line(call: Any) -> LoadedImage | None:
    try:
        loaded = call()
    except InputError as error:
        assert_one_inert_line(error)
        return None
    assert loaded.rgb.dtype == np.float32 and loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3
    assert np.isfinite(loaded.rgb).all() and 0.0 <= float(loaded.rgb.min()) <= float(loaded.rgb.max()) <= 1.0
    if loaded.alpha is not None:
        assert loaded.alpha.shape == loaded.rgb.shape[:2] and np.isfinite(loaded.alpha).all()
    return loaded


# -- image decoding ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_decode_or_fail_in_one_line(data: bytes) -> None:
    _decoded_or_one_line(lambda: load_image_bytes(data, "fuzz"))


@FUZZ
@given(
    st.sampled_from(sorted(IMAGES)).flatmap(
        lambda name: st.binary(max_size=64).map(lambda tail: (name, tail))
    )
)
def test_known_headers_with_random_tails(case: tuple[str, bytes]) -> None:
    name, tail = case
    _decoded_or_one_line(lambda: load_image_bytes(IMAGES[name][:40] + tail, "fuzz"))


@settings(FUZZ, max_examples=1000)
@given(mutated(IMAGES))
def test_mutated_images_decode_or_fail_in_one_line(case: tuple[str, bytes]) -> None:
    _name, data = case
    _decoded_or_one_line(lambda: load_image_bytes(data, "fuzz"))


@FUZZ
@given(mutated(IMAGES))
def test_mutated_image_files_load_or_fail_in_one_line(folder: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    path = folder / f"input-{name}"
    path.write_bytes(data)
    _decoded_or_one_line(lambda: load_image(path))


# -- recipe reading -----------------------------------------------------------------------------------


def _recipe_or_one_line(path: Path) -> dict[str, Any] | None:
    try:
        recipe = read_recipe(path)
    except InputError as error:
        assert_one_inert_line(error)
        return None
    assert isinstance(recipe, dict)
    json.dumps(recipe, allow_nan=False)  # always standard JSON
    return recipe


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_mutated_recipe_files_read_or_fail_in_one_line(
    folder: Path, recipe_files: dict[str, bytes], data: st.DataObject
) -> None:
    name, mutation = data.draw(mutated(recipe_files))
    path = folder / name
    path.write_bytes(mutation)
    _recipe_or_one_line(path)


def test_unmutated_recipe_files_read_back(folder: Path, recipe_files: dict[str, bytes]) -> None:
    for name, content in recipe_files.items():
        path = folder / name
        path.write_bytes(content)
        assert read_recipe(path) == RECIPE, name


json_text = st.one_of(
    st.text(max_size=200),
    st.just(json.dumps(RECIPE)).flatmap(
        lambda text: st.tuples(st.integers(0, len(text)), st.integers(0, 8), st.text(max_size=8)).map(
            lambda cut: text[: cut[0]] + cut[2] + text[cut[0] + cut[1] :]
        )
    ),
    st.sampled_from(
        ["NaN", "[", "{" * 2000, '{"a": 1e999}', '{"a": -Infinity}', '{"a":1,"a":2}', "\ufeff{}"]
    ),
)


@FUZZ
@given(text=json_text, raw=st.booleans(), tail=st.binary(max_size=8))
def test_sidecar_json_reads_or_fails_in_one_line(folder: Path, text: str, raw: bool, tail: bytes) -> None:
    image = folder / "missing.jpg"
    data = text.encode("utf-8", "surrogatepass") + (tail if raw else b"")
    sidecar_path(image).write_bytes(data)
    _recipe_or_one_line(image)


# -- showing and rebuilding any recipe ------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["\x1b]0;title\x07", "\x1b[2J", "a\nb", "\u202e", "\x9b31m", "relu1_1", "lbfgs"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    ["painterly", "recipe_version", "created", "job", "inputs", "output", "weights_id", "device", "seconds",
     "iterations", "reason", "message", "losses", "versions", "content", "styles", "blend", "params", "name",
     "path", "sha256", "init_image", "width", "height", "alpha", "seed", "size", "style_layers", "levels",
     "preset", "weights", "optimizer", "init", "dpi"]
)  # fmt: skip
recipe_like = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)),
    max_leaves=40,
)


def _shown_or_one_line(recipe: Any) -> None:
    try:
        text = format_recipe(recipe)
    except InputError as error:
        assert_one_inert_line(error)
    else:
        for line in text.split("\n"):
            assert printable(line) == line, repr(line)
    try:
        job = job_from_recipe(recipe, source="fuzz.png")
    except InputError as error:
        assert_one_inert_line(error)
    else:
        assert isinstance(job, StyleJob)


@settings(FUZZ, max_examples=500)
@given(st.one_of(json_values, recipe_like))
def test_any_json_is_shown_and_rebuilt_or_refused_in_one_line(recipe: Any) -> None:
    _shown_or_one_line(recipe)


@settings(FUZZ, max_examples=500)
@given(
    job=st.fixed_dictionaries(
        {},
        optional={
            "content": st.one_of(st.text(max_size=10), recipe_like),
            "styles": st.one_of(st.lists(st.text(max_size=10), max_size=3), recipe_like),
            "blend": st.one_of(st.lists(st.one_of(st.floats(), st.integers()), max_size=3), recipe_like),
            "params": st.dictionaries(keys, recipe_like, max_size=6),
        },
    ),
    top=st.dictionaries(keys, recipe_like, max_size=6),
)
def test_job_shaped_recipes_are_rebuilt_or_refused_in_one_line(
    job: dict[str, Any], top: dict[str, Any]
) -> None:
    _shown_or_one_line({**top, "job": job})
