"""Loading, resizing and saving images (engine.imageio).

Every image here is made by the test itself in tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo

from engine import encode, files, metadata
from engine.encode import OUTPUT_FORMATS, check_output_path, save_image
from engine.errors import InputError, OutputExistsError
from engine.imageio import load_image, load_image_bytes, resize_long_edge, srgb_icc_bytes
from engine.metadata import read_recipe, sidecar_path

RECIPE = {"painterly": "0.1.0", "recipe_version": 1, "note": "naïve café ✓", "numbers": [1, 2.5, None]}


def _save(img: Image.Image, path: Path, fmt: str | None = None, **options: object) -> Path:
    img.save(path, format=fmt, **options)
    return path


def _noise(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)


def _smooth(height: int = 24, width: int = 32) -> np.ndarray:
    """Gentle gradients, which lossy codecs keep close."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / (width - 1), y / (height - 1), 0.5 + 0 * x], axis=2).astype(np.float32)


def _temp_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(files.TEMP_PREFIX)]


def _assert_one_line(error: pytest.ExceptionInfo[InputError], path: Path | str) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# -- loading: bad files --------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "not found" in _assert_one_line(error, path)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(InputError) as error:
        load_image(folder)
    assert "folder" in _assert_one_line(error, folder)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "empty" in _assert_one_line(error, path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    whole = io.BytesIO()
    Image.fromarray((_noise(64, 64) * 255).astype(np.uint8)).save(whole, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(InputError) as error:
        load_image(path)
    _assert_one_line(error, path)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some notes\n")
    with pytest.raises(InputError) as error:
        load_image(path)
    message = _assert_one_line(error, path)
    assert "not an image Painterly can read" in message
    assert "PNG, JPEG, WebP, TIFF or BMP" in message


@pytest.mark.parametrize("name", ["document.png", "document.jpg"])
def test_pdf_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    Image.new("RGB", (8, 8), "red").save(path, format="PDF")
    assert path.read_bytes().startswith(b"%PDF")
    with pytest.raises(InputError) as error:
        load_image(path)
    message = _assert_one_line(error, path)
    assert "not an image Painterly can read: PDF documents are not supported" in message
    assert "use PNG, JPEG, WebP, TIFF or BMP" in message


@pytest.mark.parametrize("name", ["drawing.png", "drawing.jpg"])
def test_eps_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
    )
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "EPS files are not supported" in _assert_one_line(error, path)


def test_gif_is_refused(tmp_path: Path) -> None:
    # Pillow reads GIF, but it is not on Painterly's list, whatever the extension.
    path = _save(Image.new("RGB", (8, 8), "blue"), tmp_path / "animation.png", "GIF")
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "GIF images are not supported" in _assert_one_line(error, path)


def test_unlisted_format_without_known_signature_is_refused(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (8, 8), "blue"), tmp_path / "picture.png", "PPM")
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "not an image Painterly can read" in _assert_one_line(error, path)


def test_decompression_bomb_warning_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (11, 10)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 110 pixels: Pillow only warns
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "too large" in _assert_one_line(error, path)


def test_decompression_bomb_error_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (30, 10)), tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 300 pixels: Pillow raises
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "too large" in _assert_one_line(error, path)


def test_bomb_check_survives_an_ignore_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    path = _save(Image.new("RGB", (11, 10)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="too large"):
            load_image(path)


def test_bytes_use_the_given_name() -> None:
    with pytest.raises(InputError) as error:
        load_image_bytes(b"%PDF-1.4 whatever", name="clipboard")
    assert str(error.value).startswith("clipboard: ")
    with pytest.raises(InputError, match="^pasted image: the file is empty$"):
        load_image_bytes(b"")


# -- loading: good files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "fmt", "options"),
    [
        ("png", "PNG", {}),
        ("bmp", "BMP", {}),
        ("tif", "TIFF", {}),
        ("tif", "TIFF", {"compression": "tiff_lzw"}),
        ("webp", "WEBP", {"lossless": True}),
    ],
)
def test_lossless_formats_load_exactly(
    tmp_path: Path, ext: str, fmt: str, options: dict[str, object]
) -> None:
    pixels = (_noise() * 255).astype(np.uint8)
    path = _save(Image.fromarray(pixels), tmp_path / f"image.{ext}", fmt, **options)
    loaded = load_image(path)
    assert loaded.format == fmt
    assert loaded.mode == "RGB"
    assert loaded.path == path
    assert loaded.size == (32, 24)
    assert loaded.rgb.dtype == np.float32 and loaded.rgb.shape == (24, 32, 3)
    assert loaded.alpha is None
    np.testing.assert_array_equal(np.round(loaded.rgb * 255).astype(np.uint8), pixels)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("ext", "fmt"), [("jpg", "JPEG"), ("webp", "WEBP")])
def test_lossy_formats_load(tmp_path: Path, ext: str, fmt: str) -> None:
    pixels = _smooth()
    path = _save(
        Image.fromarray((pixels * 255).round().astype(np.uint8)), tmp_path / f"photo.{ext}", fmt, quality=95
    )
    loaded = load_image(path)
    assert loaded.format == fmt
    assert np.abs(loaded.rgb - pixels).mean() < 0.02


def test_extension_does_not_matter(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (4, 4), (255, 0, 0)), tmp_path / "really_a_png.jpg", "PNG")
    loaded = load_image(path)
    assert loaded.format == "PNG"
    np.testing.assert_allclose(loaded.rgb[0, 0], [1, 0, 0])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 40 wide, 20 high, a red block in the top-left corner as stored.
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 6, 6))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to display
    path = _save(stored, tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    assert loaded.rgb.shape == (40, 20, 3)
    assert loaded.size == (20, 40)
    # Turning clockwise takes the top-left corner to the top-right.
    np.testing.assert_allclose(loaded.rgb[1, 18], [1, 0, 0], atol=0.1)
    np.testing.assert_allclose(loaded.rgb[1, 1], [0, 0, 1], atol=0.1)
    np.testing.assert_allclose(loaded.rgb[38, 18], [0, 0, 1], atol=0.1)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), tmp_path / "print.jpg", "JPEG", quality=95)
    loaded = load_image(path)
    assert loaded.mode == "CMYK"
    assert loaded.rgb.shape == (8, 8, 3)
    red, green, blue = loaded.rgb[4, 4]
    assert red < 0.1 and green > 0.9 and blue > 0.9  # cyan


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    gray = np.array([[0, 64, 128, 255]], dtype=np.uint8).repeat(3, axis=0)
    loaded = load_image(_save(Image.fromarray(gray), tmp_path / "gray.png"))
    assert loaded.mode == "L"
    assert loaded.rgb.shape == (3, 4, 3)
    np.testing.assert_allclose(loaded.rgb[..., 0], gray / 255, atol=1e-6)
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])


def test_sixteen_bit_grayscale_png_keeps_precision(tmp_path: Path) -> None:
    values = np.array([[0, 1, 32768, 65534, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    loaded = load_image(path)
    assert loaded.mode == "I;16"
    row = loaded.rgb[0, :, 1].astype(np.float64)
    assert row[4] == 1.0 and row[0] == 0.0
    assert row[2] == pytest.approx(32768 / 65535, abs=1e-6)
    assert 0 < row[1] < 1 / 255  # not rounded to 8 bits first
    assert row[3] < 1.0


def test_float_and_32_bit_tiffs(tmp_path: Path) -> None:
    floats = np.array([[0.0, 0.25, 1.0, 2.0, np.nan]], dtype=np.float32)
    loaded = load_image(_save(Image.fromarray(floats), tmp_path / "float.tif", "TIFF"))
    assert loaded.mode == "F"
    np.testing.assert_allclose(loaded.rgb[0, :, 0], [0, 0.25, 1, 1, 0])
    ints = np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32)
    loaded = load_image(_save(Image.fromarray(ints), tmp_path / "int.tif", "TIFF"))
    assert loaded.mode == "I"
    assert np.all((loaded.rgb >= 0) & (loaded.rgb <= 1))
    assert loaded.rgb[0, 0, 0] == 0 and loaded.rgb[0, 2, 0] > loaded.rgb[0, 1, 0] > 0


def test_rgba_png_gives_alpha_and_unpremultiplied_rgb(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[...] = (200, 100, 50, 128)
    pixels[0, 0] = (10, 20, 30, 0)
    loaded = load_image(_save(Image.fromarray(pixels, "RGBA"), tmp_path / "clear.png"))
    assert loaded.mode == "RGBA"
    assert loaded.alpha is not None and loaded.alpha.shape == (4, 4) and loaded.alpha.dtype == np.float32
    assert loaded.alpha[1, 1] == pytest.approx(128 / 255)
    assert loaded.alpha[0, 0] == 0
    np.testing.assert_allclose(loaded.rgb[1, 1], np.array([200, 100, 50]) / 255, atol=1e-6)
    np.testing.assert_allclose(loaded.rgb[0, 0], np.array([10, 20, 30]) / 255, atol=1e-6)


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    loaded = load_image(_save(Image.new("RGBA", (4, 4), (1, 2, 3, 255)), tmp_path / "opaque.png"))
    assert loaded.mode == "RGBA"
    assert loaded.alpha is None


def test_la_png_gives_alpha(tmp_path: Path) -> None:
    loaded = load_image(_save(Image.new("LA", (4, 4), (100, 50)), tmp_path / "la.png"))
    assert loaded.mode == "LA"
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0] == pytest.approx(50 / 255)
    np.testing.assert_allclose(loaded.rgb[0, 0], [100 / 255] * 3, atol=1e-6)


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    loaded = load_image(_save(img, tmp_path / "palette.png", transparency=0))
    assert loaded.mode == "P"
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0] == 0 and loaded.alpha[1, 1] == 1
    np.testing.assert_allclose(loaded.rgb[1, 1], [1, 0, 0])


def test_rgb_png_with_colour_key_gives_alpha(tmp_path: Path) -> None:
    img = Image.new("RGB", (4, 4), (9, 9, 9))
    img.putpixel((0, 0), (1, 2, 3))
    loaded = load_image(_save(img, tmp_path / "keyed.png", transparency=(1, 2, 3)))
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0] == 0 and loaded.alpha[2, 2] == 1


def _icc_profile(primaries: tuple[tuple[float, float, float], ...], description: str) -> bytes:
    """A minimal ICC v2 RGB matrix/TRC display profile (D50 PCS, gamma 2.2 curves)."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + b"".join(s15(v) for v in values)

    text = description.encode("ascii") + b"\x00"
    desc = (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(text))
        + text
        + b"\x00" * 4
        + b"\x00" * 4
        + b"\x00" * 70
    )
    curve = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 0x0233) + b"\x00\x00"
    d50 = (0.9642, 1.0, 0.8249)
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(d50)),
        (b"rXYZ", xyz(primaries[0])),
        (b"gXYZ", xyz(primaries[1])),
        (b"bXYZ", xyz(primaries[2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\x00\x00\x00\x00no copyright\x00"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        while (offset + len(body)) % 4:
            body += b"\x00"
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\x00\x00\x00\x00"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 24
        + struct.pack(">I", 0)
        + b"".join(s15(v) for v in d50)
        + b"\x00" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# sRGB's primaries adapted to D50, as ICC profiles store them.
_SRGB_RED = (0.4360747, 0.2225045, 0.0139322)
_SRGB_GREEN = (0.3850649, 0.7168786, 0.0971045)
_SRGB_BLUE = (0.1430804, 0.0606169, 0.7141733)


def test_srgb_profile_passes_unchanged(tmp_path: Path) -> None:
    pixels = (_noise(8, 8) * 255).astype(np.uint8)
    plain = load_image(_save(Image.fromarray(pixels), tmp_path / "plain.png"))
    tagged = load_image(_save(Image.fromarray(pixels), tmp_path / "tagged.png", icc_profile=srgb_icc_bytes()))
    np.testing.assert_array_equal(plain.rgb, tagged.rgb)


def test_other_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    # A profile whose "red" has sRGB's green primary and vice versa: an unmistakable direction.
    icc = _icc_profile((_SRGB_GREEN, _SRGB_RED, _SRGB_BLUE), "Swapped primaries")
    assert (
        ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
        == "Swapped primaries"
    )
    img = Image.new("RGB", (3, 1))
    img.putpixel((0, 0), (255, 0, 0))
    img.putpixel((1, 0), (0, 255, 0))
    img.putpixel((2, 0), (128, 128, 128))
    loaded = load_image(_save(img, tmp_path / "swapped.png", icc_profile=icc))
    np.testing.assert_allclose(loaded.rgb[0, 0], [0, 1, 0], atol=0.03)
    np.testing.assert_allclose(loaded.rgb[0, 1], [1, 0, 0], atol=0.03)
    gray = loaded.rgb[0, 2]
    assert np.ptp(gray) < 0.03  # neutral stays neutral


def test_unreadable_profile_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    img = Image.new("RGB", (2, 2), (10, 200, 30))
    with caplog.at_level(logging.WARNING, logger="engine.encode"):
        loaded = load_image(_save(img, tmp_path / "junk-profile.png", icc_profile=b"not a profile at all"))
    np.testing.assert_allclose(loaded.rgb[0, 0], np.array([10, 200, 30]) / 255, atol=1e-6)
    assert "profile" in caplog.text


def test_load_image_bytes_matches_file(tmp_path: Path) -> None:
    path = _save(Image.fromarray((_noise() * 255).astype(np.uint8)), tmp_path / "a.png")
    from_file = load_image(path)
    from_bytes = load_image_bytes(path.read_bytes())
    assert from_bytes.path is None
    assert from_bytes.sha256 == from_file.sha256
    np.testing.assert_array_equal(from_bytes.rgb, from_file.rgb)


# -- resizing -------------------------------------------------------------------------


def test_resize_long_edge_keeps_aspect() -> None:
    image = _smooth(30, 60)
    out = resize_long_edge(image, 20)
    assert out.shape == (10, 20, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    tall = resize_long_edge(_smooth(60, 30), 100)
    assert tall.shape == (100, 50, 3)


def test_resize_long_edge_alpha_and_tiny_sides() -> None:
    alpha = np.ones((1000, 3), dtype=np.float32)
    out = resize_long_edge(alpha, 10)
    assert out.shape == (10, 1)
    np.testing.assert_allclose(out, 1.0, atol=1e-5)


def test_resize_long_edge_same_size_is_a_copy() -> None:
    image = _noise(10, 20)
    out = resize_long_edge(image, 20)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_resize_long_edge_keeps_fine_levels() -> None:
    # A float ramp must not be quantised to 8 bits on the way through Pillow.
    ramp = np.linspace(0, 1, 4000, dtype=np.float32)[None, :, None].repeat(4, axis=0).repeat(3, axis=2)
    out = resize_long_edge(ramp, 2000)
    assert out.shape == (2, 2000, 3)
    assert len(np.unique(out[1, :, 0])) > 1000


def test_resize_long_edge_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        resize_long_edge(_noise(), 0)


# -- output path checks -----------------------------------------------------------------


def test_check_output_path_accepts_a_new_file(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "out.png") == tmp_path / "out.png"
    assert _temp_files(tmp_path) == []


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "out.gif"
    with pytest.raises(InputError) as error:
        check_output_path(path)
    message = _assert_one_line(error, path)
    for ext in OUTPUT_FORMATS:
        assert ext in message
    with pytest.raises(InputError, match="unknown output file type"):
        save_image(path, _noise())
    with pytest.raises(InputError, match="no extension"):
        check_output_path(tmp_path / "out")


def test_existing_output_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError) as error:
        check_output_path(path)
    assert str(error.value) == f"{path}: already exists; pass --overwrite to replace it"
    with pytest.raises(OutputExistsError):
        save_image(path, _noise())
    assert path.read_bytes() == b"precious"
    assert check_output_path(path, overwrite=True) == path


def test_output_folder_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png")
    folder = tmp_path / "out.png"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(folder, overwrite=True)


@pytest.mark.skipif(
    os.name == "nt" or (hasattr(os, "geteuid") and os.geteuid() == 0), reason="needs POSIX non-root"
)
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write"):
            check_output_path(locked / "out.png")
    finally:
        locked.chmod(0o700)


# -- saving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", sorted(OUTPUT_FORMATS))
def test_round_trip_every_format(tmp_path: Path, ext: str) -> None:
    pixels = _smooth()
    path = save_image(tmp_path / f"out{ext}", pixels, recipe=RECIPE)
    assert path == tmp_path / f"out{ext}"
    assert read_recipe(path) == RECIPE
    assert not sidecar_path(path).exists()
    loaded = load_image(path)
    assert loaded.format == OUTPUT_FORMATS[ext]
    tolerance = 0.02 if OUTPUT_FORMATS[ext] in ("JPEG", "WEBP") else 0.5 / 255 + 1e-6
    assert np.abs(loaded.rgb - pixels).mean() <= tolerance
    with Image.open(path) as img:
        assert img.info.get("icc_profile") == srgb_icc_bytes()
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_round_trip_sixteen_bit(tmp_path: Path, ext: str) -> None:
    path = save_image(tmp_path / f"deep{ext}", _smooth(), recipe=RECIPE, bit_depth=16)
    assert read_recipe(path) == RECIPE
    with Image.open(path) as img:
        assert img.info.get("icc_profile") == srgb_icc_bytes()
        img.verify()


def test_lossless_outputs_round_to_nearest_and_clip(tmp_path: Path) -> None:
    levels = np.arange(256, dtype=np.float32) / 255
    pixels = np.stack([levels, levels + 0.4 / 255, levels - 0.4 / 255], axis=1)[None].astype(np.float32)
    pixels[0, 0] = (-0.5, 1.5, np.nan)
    path = save_image(tmp_path / "levels.png", pixels)
    with Image.open(path) as img:
        stored = np.asarray(img)
    assert tuple(stored[0, 0]) == (0, 255, 0)
    np.testing.assert_array_equal(stored[0, 1:, 0], np.arange(1, 256))
    np.testing.assert_array_equal(stored[0, 1:, 1], np.arange(1, 256))
    np.testing.assert_array_equal(stored[0, 1:, 2], np.arange(1, 256))


def test_saved_files_are_not_private(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("POSIX permissions")
    path = save_image(tmp_path / "out.png", _noise())
    assert path.stat().st_mode & 0o044  # a temp file's 0600 would hide it from other users


def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    save_image(path, _noise(), overwrite=True)
    assert load_image(path).size == (32, 24)
    assert _temp_files(tmp_path) == []


def test_file_appearing_during_save_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate another program creating the file after the up-front check passed.
    path = tmp_path / "out.png"
    real_check = encode.check_output_path

    def check_then_race(target: Path, *, overwrite: bool = False) -> Path:
        result = real_check(target, overwrite=overwrite)
        Path(target).write_bytes(b"theirs")
        return result

    monkeypatch.setattr(encode, "check_output_path", check_then_race)
    with pytest.raises(OutputExistsError):
        save_image(path, _noise())
    assert path.read_bytes() == b"theirs"
    assert _temp_files(tmp_path) == []


def test_failed_encoder_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    save_image(path, _noise(seed=1))
    before = path.read_bytes()

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half an image")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(InputError) as error:
        save_image(path, _noise(seed=2), overwrite=True)
    assert "No space left on device" in _assert_one_line(error, path)
    assert path.read_bytes() == before
    assert _temp_files(tmp_path) == []


def test_failed_tiff16_writer_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_imwrite(*args: object, **kwargs: object) -> None:
        raise ValueError("codec exploded")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(InputError, match="codec exploded"):
        save_image(tmp_path / "out.tif", _noise(), bit_depth=16)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".tiff"])
def test_alpha_is_carried(tmp_path: Path, ext: str) -> None:
    pixels = _smooth()
    alpha = np.tile(np.linspace(0.2, 1, 32, dtype=np.float32), (24, 1))
    path = save_image(tmp_path / f"clear{ext}", pixels, alpha=alpha, quality=100)
    loaded = load_image(path)
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha, alpha, atol=1 / 255)
    np.testing.assert_allclose(loaded.rgb, pixels, atol=1 / 255)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_alpha_in_sixteen_bit(tmp_path: Path, ext: str) -> None:
    alpha = np.tile(np.linspace(0.2, 1, 32, dtype=np.float32), (24, 1))
    path = save_image(tmp_path / f"clear{ext}", _smooth(), alpha=alpha, bit_depth=16)
    with Image.open(path) as img:
        assert img.mode == "RGBA"
    loaded = load_image(path)
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha, alpha, atol=1 / 255)


def test_jpeg_drops_alpha_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alpha = np.full((24, 32), 0.5, dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="engine.encode"):
        path = save_image(tmp_path / "flat.jpg", _smooth(), alpha=alpha)
    assert "alpha" in caplog.text
    with Image.open(path) as img:
        assert img.mode == "RGB"


def test_sixteen_bit_only_where_supported(tmp_path: Path) -> None:
    for ext in (".jpg", ".webp"):
        with pytest.raises(InputError, match="16-bit"):
            save_image(tmp_path / f"deep{ext}", _noise(), bit_depth=16)
    with pytest.raises(InputError, match="bit depth"):
        save_image(tmp_path / "deep.png", _noise(), bit_depth=12)
    assert os.listdir(tmp_path) == []


def _gradient() -> np.ndarray:
    ramp = np.linspace(0, 1, 1024, dtype=np.float32)
    return np.stack([ramp, ramp[::-1], ramp * 0.5], axis=1)[None].repeat(2, axis=0)


def test_sixteen_bit_tiff_has_fine_levels(tmp_path: Path) -> None:
    pixels = _gradient()
    path = save_image(tmp_path / "deep.tiff", pixels, recipe=RECIPE, bit_depth=16)
    stored = tifffile.imread(path)
    assert stored.dtype == np.uint16 and stored.shape == (2, 1024, 3)
    assert len(np.unique(stored[..., 0])) > 256
    np.testing.assert_array_equal(stored, np.floor(pixels * 65535 + 0.5).astype(np.uint16))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.tags[encode._TIFF_ICC_TAG].value == srgb_icc_bytes()
    loaded = load_image(path)  # read back at full precision, not Pillow's 8 bits
    assert len(np.unique(loaded.rgb[..., 0])) > 256
    np.testing.assert_allclose(loaded.rgb, pixels, atol=1 / 65535)


def _decode_png16(data: bytes) -> np.ndarray:
    """A small independent PNG decoder for 16-bit RGB(A), all five filter types."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color_type = struct.unpack(">IIBB", body[:10])
            assert depth == 16
            channels = {2: 3, 6: 4}[color_type]
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    bpp, stride = channels * 2, width * channels * 2
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return np.frombuffer(b"".join(rows), dtype=">u2").reshape(height, width, channels)


def test_sixteen_bit_png_has_fine_levels(tmp_path: Path) -> None:
    pixels = _gradient()
    path = save_image(tmp_path / "deep.png", pixels, recipe=RECIPE, bit_depth=16)
    stored = _decode_png16(path.read_bytes())
    assert stored.shape == (2, 1024, 3)
    assert len(np.unique(stored[..., 0])) > 256
    np.testing.assert_array_equal(stored, np.floor(pixels * 65535 + 0.5).astype(np.uint16))
    with Image.open(path) as img:
        img.load()  # Pillow checks the structure and CRCs (it reduces to 8 bits itself)
        assert img.size == (1024, 2)


@pytest.mark.parametrize("band_bytes", [1, 1000])
def test_sixteen_bit_png_in_bands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, band_bytes: int) -> None:
    # Large images are filtered a band of rows at a time; each band must see the row above it.
    monkeypatch.setattr(encode, "_PNG_BAND_BYTES", band_bytes)
    pixels = _noise(9, 40, seed=3)
    alpha = np.random.default_rng(4).random((9, 40)).astype(np.float32)
    path = save_image(tmp_path / "bands.png", pixels, alpha=alpha, bit_depth=16)
    stored = _decode_png16(path.read_bytes())
    expected = np.concatenate([pixels, alpha[:, :, None]], axis=2)
    np.testing.assert_array_equal(stored, np.floor(expected * 65535 + 0.5).astype(np.uint16))


def test_bad_quality_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="quality"):
        save_image(tmp_path / "out.jpg", _noise(), quality=0)
    with pytest.raises(InputError, match="quality"):
        save_image(tmp_path / "out.jpg", _noise(), quality=101)


def test_wrong_shapes_are_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="H x W x 3"):
        save_image(tmp_path / "out.png", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="float"):
        save_image(tmp_path / "out.png", np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        save_image(tmp_path / "out.png", _noise(), alpha=np.ones((3, 3), dtype=np.float32))


# -- recipes: sidecars and reading back ----------------------------------------------------------


def _big_recipe() -> dict[str, object]:
    return {**RECIPE, "padding": ["x" * 100] * 800}  # about 80 KB: more than a JPEG comment can hold


def test_big_jpeg_recipe_goes_to_a_sidecar(tmp_path: Path) -> None:
    recipe = _big_recipe()
    path = save_image(tmp_path / "big.jpg", _smooth(), recipe=recipe)
    sidecar = sidecar_path(path)
    assert sidecar == tmp_path / "big.jpg.json"
    assert json.loads(sidecar.read_text(encoding="utf-8")) == recipe
    assert read_recipe(path) == recipe
    assert _temp_files(tmp_path) == []


def test_stale_sidecar_is_removed_on_overwrite(tmp_path: Path) -> None:
    path = save_image(tmp_path / "big.jpg", _smooth(), recipe=_big_recipe())
    assert sidecar_path(path).exists()
    save_image(path, _smooth(), recipe=RECIPE, overwrite=True)
    assert not sidecar_path(path).exists()
    assert read_recipe(path) == RECIPE


def test_existing_sidecar_is_not_overwritten(tmp_path: Path) -> None:
    sidecar = tmp_path / "big.jpg.json"
    sidecar.write_text("{}")
    with pytest.raises(OutputExistsError) as error:
        save_image(tmp_path / "big.jpg", _smooth(), recipe=_big_recipe())
    assert str(error.value).startswith(f"{sidecar}: ")
    assert not (tmp_path / "big.jpg").exists()  # nothing written at all
    assert sidecar.read_text() == "{}"
    save_image(tmp_path / "big.jpg", _smooth(), recipe=_big_recipe(), overwrite=True)
    assert read_recipe(tmp_path / "big.jpg") == _big_recipe()


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_big_recipes_embed_where_possible(tmp_path: Path, ext: str) -> None:
    path = save_image(tmp_path / f"big{ext}", _smooth(), recipe=_big_recipe())
    assert not sidecar_path(path).exists()
    assert read_recipe(path) == _big_recipe()


def test_recipe_survives_xml_special_characters(tmp_path: Path) -> None:
    recipe = {**RECIPE, "tricky": "</painterly:recipe> & <b>bold</b> ]]> \"quotes\" 'single'"}
    for ext in (".webp", ".png", ".jpg", ".tif"):
        assert read_recipe(save_image(tmp_path / f"tricky{ext}", _smooth(), recipe=recipe)) == recipe


def test_no_recipe(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "other.png")
    with pytest.raises(InputError) as error:
        read_recipe(path)
    assert "no Painterly recipe" in _assert_one_line(error, path)
    path = save_image(tmp_path / "plain.jpg", _noise())  # saved without a recipe
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(path)
    with pytest.raises(InputError, match="not found"):
        read_recipe(tmp_path / "missing.png")


def test_foreign_text_chunks_are_not_recipes(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("Comment", '{"looks": "like json"}')
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "other.png", pnginfo=info)
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(path)


def test_damaged_recipe(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_itxt(metadata.RECIPE_KEY, "{not json")
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "damaged.png", pnginfo=info)
    with pytest.raises(InputError, match="damaged"):
        read_recipe(path)
    info = PngInfo()
    info.add_itxt(metadata.RECIPE_KEY, "[1, 2]")
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "list.png", pnginfo=info)
    with pytest.raises(InputError, match="not a JSON object"):
        read_recipe(path)


def test_sidecar_alone_is_read(tmp_path: Path) -> None:
    path = tmp_path / "lost.jpg"
    sidecar_path(path).write_text(json.dumps(RECIPE), encoding="utf-8")
    assert read_recipe(path) == RECIPE


# -- deep TIFF orientation matches Pillow's ------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_sixteen_bit_tiff_orientation(tmp_path: Path, orientation: int) -> None:
    samples = (np.random.default_rng(orientation).integers(0, 256, (5, 7, 3)) * 257).astype(np.uint16)
    path = tmp_path / "oriented.tif"
    tifffile.imwrite(
        path, samples, photometric="rgb", metadata=None, extratags=[(274, "H", 1, orientation, True)]
    )
    loaded = load_image(path)
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.float32) / 255
    assert loaded.rgb.shape == expected.shape
    np.testing.assert_allclose(loaded.rgb, expected, atol=1e-6)


def test_unwritable_folder_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores folder permissions, so also fake the failure the probe would see.
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(encode.tempfile, "TemporaryFile", refuse)
    with pytest.raises(InputError) as error:
        check_output_path(tmp_path / "out.png")
    assert "cannot write to the folder" in _assert_one_line(error, tmp_path / "out.png")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_recipe_of_an_image_too_large_to_decode(tmp_path: Path) -> None:
    # The largest output Painterly makes is over Pillow's pixel limit; `painterly info` must still work.
    text = json.dumps(RECIPE).encode()
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16384, 16384, 8, 2, 0, 0, 0))
        + _png_chunk(b"iTXt", metadata.RECIPE_KEY.encode() + b"\x00\x00\x00\x00\x00" + text)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 10))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    assert read_recipe(path) == RECIPE


def test_compressed_and_late_png_recipes(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_itxt("Other", "first")
    info.add_itxt(metadata.RECIPE_KEY, json.dumps(RECIPE), zip=True)
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "zipped.png", pnginfo=info)
    assert read_recipe(path) == RECIPE
    # A recipe chunk after the pixel data (as other tools may write) is found too.
    plain = _save(Image.new("RGB", (4, 4)), tmp_path / "late.png").read_bytes()
    iend = plain[-12:]
    late = plain[:-12] + _png_chunk(b"iTXt", metadata.RECIPE_KEY.encode() + b"\x00\x00\x00\x00\x00{}") + iend
    (tmp_path / "late.png").write_bytes(late)
    assert read_recipe(tmp_path / "late.png") == {}


def test_jpeg_recipe_among_other_segments(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    comment = f"{metadata.RECIPE_KEY} {json.dumps(RECIPE)}".encode()
    path = _save(
        Image.new("RGB", (8, 8)),
        tmp_path / "camera.jpg",
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=srgb_icc_bytes(),
        comment=comment,
    )
    assert read_recipe(path) == RECIPE


def test_truncated_images_keep_their_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xfe\x00")  # a COM segment cut short
    with pytest.raises(InputError, match="no Painterly recipe"):
        read_recipe(path)
    sidecar_path(path).write_text(json.dumps(RECIPE), encoding="utf-8")
    assert read_recipe(path) == RECIPE


@pytest.mark.parametrize(
    "name,bit_depth", [("a.png", 8), ("b.png", 16), ("c.jpg", 8), ("d.tif", 8), ("e.tif", 16)]
)
def test_print_resolution_is_written(tmp_path, name, bit_depth) -> None:
    from engine.encode import save_image

    pixels = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    path = save_image(tmp_path / name, pixels, dpi=300, bit_depth=bit_depth)
    with Image.open(path) as image:
        assert image.info["dpi"][0] == pytest.approx(300, abs=0.01)
