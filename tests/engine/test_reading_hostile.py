"""Files a stranger could send: each ends in a result or one inert InputError line, never a hang.

Covers engine.imageio (decoding) and engine.metadata (the recipe read back): what is not a
regular file, names too long, hostile recipes (chunks cut short, lengths past the end, zlib
bombs, deep or huge JSON, NaN, duplicate keys, XML entities), damaged TIFFs, and decoding that
must not print warnings or let any other exception through.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, TiffImagePlugin, features

import cli
from engine import imageio, metadata
from engine.encode import save_image
from engine.errors import InputError
from engine.imageio import load_image, load_image_bytes
from engine.metadata import RECIPE_KEY, parse_recipe, read_recipe, sidecar_path
from engine.text import printable
from tests.engine.blocking import finishes_within

ROOT = Path(__file__).resolve().parents[2]
RECIPE = {"painterly": "0.1.0", "recipe_version": 1, "job": {"content": "a.png", "styles": ["b.png"]}}


def one_line(error: pytest.ExceptionInfo[InputError], path: Path | str | None = None) -> str:
    message = str(error.value)
    assert "\n" not in message and printable(message) == message, message
    if path is not None:
        assert message.startswith(f"{path}: "), message
    return message


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def plain_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(out, "PNG")
    return out.getvalue()


def png_with(*chunks: bytes) -> bytes:
    """A small valid PNG with ``chunks`` inserted before IEND."""
    data = plain_png()
    return data[:-12] + b"".join(chunks) + data[-12:]


def itxt(text: bytes, *, flag: int = 0, method: int = 0) -> bytes:
    return png_chunk(b"iTXt", RECIPE_KEY.encode() + b"\x00" + bytes([flag, method]) + b"\x00\x00" + text)


def jpeg_with_comment(body: bytes, length: int | None = None) -> bytes:
    length = len(body) + 2 if length is None else length
    return b"\xff\xd8" + b"\xff\xfe" + struct.pack(">H", length) + body + b"\xff\xd9"


def webp_with_xmp(packet: bytes, length: int | None = None) -> bytes:
    length = len(packet) if length is None else length
    chunk = b"XMP " + struct.pack("<I", length) + packet + (b"\x00" if len(packet) & 1 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def xmp(recipe_text: str, *, head: str = "") -> bytes:
    return (
        f'{head}<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:painterly="{metadata.XMP_NAMESPACE}">'
        f"<painterly:recipe>{recipe_text}</painterly:recipe></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def tiff_with_description(value: bytes, *, kind: int = 2, big: bool = False, order: str = "<") -> bytes:
    """A minimal TIFF (one directory, one ImageDescription tag) for the recipe reader."""
    magic = b"II" if order == "<" else b"MM"
    if big:
        header = magic + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        data_at = 16 + 8 + 20 + 8
        inline = 8
        entry = struct.pack(order + "HHQ", 270, kind, len(value))
        field = value.ljust(8, b"\x00") if len(value) <= inline else struct.pack(order + "Q", data_at)
        directory = struct.pack(order + "Q", 1) + entry + field + struct.pack(order + "Q", 0)
    else:
        header = magic + struct.pack(order + "HI", 42, 8)
        data_at = 8 + 2 + 12 + 4
        inline = 4
        entry = struct.pack(order + "HHI", 270, kind, len(value))
        field = value.ljust(4, b"\x00") if len(value) <= inline else struct.pack(order + "I", data_at)
        directory = struct.pack(order + "H", 1) + entry + field + struct.pack(order + "I", 0)
    return header + directory + (value if len(value) > inline else b"")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- 1. only regular files, under a size limit ------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("reader", [load_image, read_recipe], ids=["load_image", "read_recipe"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, reader: Callable[[Path], Any]) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as error:
        finishes_within(10, lambda: reader(fifo))
    assert "pipe" in one_line(error, fifo)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_sidecar_is_refused_without_blocking(tmp_path: Path) -> None:
    image = tmp_path / "lost.jpg"
    os.mkfifo(sidecar_path(image))
    with pytest.raises(InputError) as error:
        finishes_within(10, lambda: read_recipe(image))
    assert "pipe" in one_line(error, sidecar_path(image))


@pytest.mark.skipif(
    not Path("/dev/zero").exists() or not hasattr(os, "fork"), reason="needs /dev/zero and resource limits"
)
def test_dev_zero_is_refused_in_bounded_memory() -> None:
    # In a child process with a memory ceiling: a regression that reads /dev/zero fails fast there
    # (MemoryError, a non-zero exit) instead of taking this machine's memory.
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from engine.errors import InputError\n"
        "from engine.imageio import load_image\n"
        "from engine.metadata import read_recipe\n"
        "for reader in (load_image, read_recipe):\n"
        "    try:\n"
        "        reader('/dev/zero')\n"
        "    except InputError as error:\n"
        "        print(error)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["/dev/zero: is a device, not a regular file"] * 2
    assert done.stderr == ""


@pytest.mark.parametrize("reader", [load_image, read_recipe], ids=["load_image", "read_recipe"])
def test_a_folder_is_refused(tmp_path: Path, reader: Callable[[Path], Any]) -> None:
    folder = tmp_path / "photo.png"
    folder.mkdir()
    with pytest.raises(InputError) as error:
        reader(folder)
    assert "folder" in one_line(error, folder)


@pytest.mark.parametrize("reader", [load_image, read_recipe], ids=["load_image", "read_recipe"])
def test_a_name_too_long_is_one_line(tmp_path: Path, reader: Callable[[Path], Any]) -> None:
    path = tmp_path / ("a" * 300 + ".png")
    with pytest.raises(InputError) as error:
        reader(path)
    assert "too long" in one_line(error, path)


def test_a_longest_name_whose_sidecar_name_would_be_too_long(tmp_path: Path) -> None:
    # 255 bytes is allowed; "<name>.json" is not, and looking for it must not raise OSError.
    named = tmp_path / ("b" * 251 + ".png")
    try:
        save_image(named, np.zeros((4, 4, 3), np.float32), recipe=RECIPE)
    except InputError:
        pytest.skip("this filesystem does not take 255-byte names")
    assert read_recipe(named) == RECIPE
    plain = tmp_path / ("c" * 251 + ".png")
    plain.write_bytes(plain_png())
    with pytest.raises(InputError) as error:
        read_recipe(plain)
    assert "no Painterly recipe" in one_line(error, plain)
    assert load_image(plain).size == (4, 4)


def test_size_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "big.png", plain_png())
    monkeypatch.setattr(imageio, "IMAGE_FILE_LIMIT", 50)
    with pytest.raises(InputError) as error:
        load_image(path)
    assert "too large" in one_line(error, path)
    with pytest.raises(InputError) as error:
        load_image_bytes(plain_png(), "pasted image")
    assert "too large" in one_line(error, "pasted image")
    # A sidecar over the recipe limit is refused before it is read.
    monkeypatch.setattr(metadata, "RECIPE_TEXT_LIMIT", 100)
    image = tmp_path / "lost.jpg"
    sidecar_path(image).write_text(json.dumps({"x": "y" * 200}))
    with pytest.raises(InputError) as error:
        read_recipe(image)
    assert "too large" in one_line(error, sidecar_path(image))


# -- 2. hostile recipes -----------------------------------------------------------------------------

deep = "[" * 100_000 + "]" * 100_000
key = RECIPE_KEY.encode() + b"\x00"
laughs = '<!DOCTYPE x [<!ENTITY lol0 "lol">' + "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
) + "]>"  # fmt: skip
external = '<!DOCTYPE x [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
utf16 = (
    '<?xml version="1.0" encoding="UTF-16"?>' + xmp("&e;", head='<!DOCTYPE x [<!ENTITY e "{}">]>').decode()
)
no_recipe = "no Painterly recipe"
HOSTILE_RECIPES: list[tuple[str, str, bytes, str]] = [
    # (id, file name, bytes, what the message says)
    ("key-only iTXt", "a.png", png_with(png_chunk(b"iTXt", key)), "cut short"),
    ("iTXt without tags", "a.png", png_with(png_chunk(b"iTXt", key + b"\x00\x00")), "cut short"),
    ("deep JSON", "a.png", png_with(itxt(deep.encode())), "nested too deeply"),
    ("33 levels", "a.png", png_with(itxt(('{"a":' * 33 + "1" + "}" * 33).encode())), "more than 32 levels"),
    ("5000 digits", "a.png", png_with(itxt(b'{"a": ' + b"9" * 5000 + b"}")), "too many digits"),
    ("duplicate keys", "a.png", png_with(itxt(b'{"job": 1, "job": 2}')), "appears twice"),
    ("not JSON", "a.png", png_with(itxt(b"{not json")), "damaged"),
    ("JSON list", "a.png", png_with(itxt(b"[1, 2]")), "not a JSON object"),
    ("not UTF-8", "a.png", png_with(itxt(b'{"a": "\xff\xfe"}')), "not UTF-8"),
    ("bad checksum", "a.png", png_with(png_chunk(b"iTXt", key + b"\x00" * 4 + b"{}", crc=1)), "checksum"),
    ("unknown compression", "a.png", png_with(itxt(b"{}", flag=2)), "unknown compression"),
    ("zlib method 1", "a.png", png_with(itxt(zlib.compress(b"{}"), flag=1, method=1)), "unknown compression"),
    ("zlib bomb", "a.png", png_with(itxt(zlib.compress(b" " * (8 << 20), 9), flag=1)), "too large"),
    ("zlib cut short", "a.png", png_with(itxt(zlib.compress(b'{"a": 1}' * 50)[:-20], flag=1)), "cut short"),
    ("zlib corrupt", "a.png", png_with(itxt(b"not zlib at all", flag=1)), "corrupt"),
    ("chunk past the end", "a.png", plain_png()[:-12] + b"\0\0\3\xe8iTXt" + b"x" * 10, no_recipe),
    ("chunk length 2**32-1", "a.png", plain_png()[:-12] + b"\xff" * 4 + b"iTXt" + b"x" * 10, no_recipe),
    ("no IEND", "a.png", plain_png()[:-12], no_recipe),
    ("PNG signature only", "a.png", b"\x89PNG\r\n\x1a\n", no_recipe),
    ("COM past the end", "a.jpg", jpeg_with_comment(b"painterly:recipe {}", length=60000), no_recipe),
    ("COM length 1", "a.jpg", jpeg_with_comment(b"", length=1), no_recipe),
    ("COM not UTF-8", "a.jpg", jpeg_with_comment(b"painterly:recipe \xc3\x28"), "not UTF-8"),
    ("fill bytes", "a.jpg", b"\xff\xd8" + b"\xff" * 100_000, no_recipe),
    ("lost sync", "a.jpg", b"\xff\xd8\x00\x00", no_recipe),
    ("XMP past the end", "a.webp", webp_with_xmp(xmp("{}"), length=1 << 30), no_recipe),
    ("XMP billion laughs", "a.webp", webp_with_xmp(xmp("&lol9;", head=laughs)), "declares a DTD"),
    ("XMP external entity", "a.webp", webp_with_xmp(xmp("&x;", head=external)), "declares a DTD"),
    ("XMP in UTF-16 with a DTD", "a.webp", webp_with_xmp(utf16.encode("utf-16")), no_recipe),
    ("XMP not well-formed", "a.webp", webp_with_xmp(xmp('{"a": "<"}')), "not well-formed"),
    ("XMP foreign", "a.webp", webp_with_xmp(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"), no_recipe),
    ("TIFF bad directory offset", "a.tif", b"II*\x00\xf0\xff\xff\xff" + b"\x00" * 8, no_recipe),
    ("TIFF header only", "a.tif", b"II*\x00", no_recipe),
    ("TIFF entries cut", "a.tif", tiff_with_description(b'{"a": 1}')[:20], no_recipe),
    ("TIFF value past the end", "a.tif", tiff_with_description(b'{"a": 1}')[:-3], no_recipe),
    ("TIFF count 65535", "a.tif", b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 100, no_recipe),
    ("BigTIFF huge count", "a.tif", b"II+\x00\x08\x00\x00\x00" + struct.pack("<QQ", 16, 1 << 60), no_recipe),
    ("TIFF description not UTF-8", "a.tif", tiff_with_description(b'{"a": "\xff"}'), "not UTF-8"),
    ("TIFF description as SHORT", "a.tif", tiff_with_description(b'{"a": 1}', kind=3), no_recipe),
]  # fmt: skip
HOSTILE_IDS = [case[0] for case in HOSTILE_RECIPES]


@pytest.mark.parametrize(
    ("name", "data", "expected"), [case[1:] for case in HOSTILE_RECIPES], ids=HOSTILE_IDS
)
def test_hostile_recipes_are_one_line(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = write(tmp_path, name, data)
    with pytest.raises(InputError) as error:
        finishes_within(30, lambda: read_recipe(path))
    assert expected in one_line(error, path)


@pytest.mark.parametrize(("name", "data"), [case[1:3] for case in HOSTILE_RECIPES], ids=HOSTILE_IDS)
def test_info_on_hostile_recipes_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes
) -> None:
    path = write(tmp_path, name, data)
    assert cli.main(["info", str(path)]) == cli.EXIT_INPUT
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and printable(err.rstrip("\n")) == err.rstrip("\n")


def test_nan_and_infinity_read_as_null(tmp_path: Path) -> None:
    text = b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e999, "e": -1e999, "f": [NaN], "g": 1.5}'
    path = write(tmp_path, "nan.png", png_with(itxt(text)))
    recipe = read_recipe(path)
    assert recipe == {"a": None, "b": None, "c": None, "d": None, "e": None, "f": [None], "g": 1.5}
    json.dumps(recipe, allow_nan=False)  # standard JSON again


def test_hostile_but_valid_recipes_are_read(tmp_path: Path) -> None:
    # 32 levels is the most allowed; a long top level within the limit is just data.
    nested = json.loads('{"a":' * 31 + "[1]" + "}" * 31)
    assert read_recipe(write(tmp_path, "deep.png", png_with(itxt(json.dumps(nested).encode())))) == nested
    wide = {"a": list(range(100_000))}
    assert read_recipe(write(tmp_path, "wide.png", png_with(itxt(json.dumps(wide).encode())))) == wide
    compressed = png_with(itxt(zlib.compress(json.dumps(RECIPE).encode()), flag=1))
    assert read_recipe(write(tmp_path, "zipped.png", compressed)) == RECIPE
    # The first recipe counts; a second (a later tool's) is not read.
    two = png_with(itxt(b'{"n": 1}'), itxt(b"{broken"))
    assert read_recipe(write(tmp_path, "two.png", two)) == {"n": 1}


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("value", [b'{"a": 1}', b"{}", b'{"a": 1}\x00\x00'])
def test_tiff_descriptions_classic_and_big(tmp_path: Path, order: str, big: bool, value: bytes) -> None:
    path = write(tmp_path, "d.tif", tiff_with_description(value, big=big, order=order))
    assert read_recipe(path) == json.loads(value.rstrip(b"\x00"))


def test_a_damaged_embedded_recipe_falls_back_to_the_sidecar(tmp_path: Path) -> None:
    path = write(tmp_path, "a.png", png_with(itxt(b"{broken")))
    sidecar_path(path).write_text(json.dumps(RECIPE), encoding="utf-8")
    assert read_recipe(path) == RECIPE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (deep.encode(), "nested too deeply"),
        (b'{"a": 1, "a": 1}', "appears twice"),
    ],
)
def test_hostile_sidecars(tmp_path: Path, text: bytes, expected: str) -> None:
    image = tmp_path / "lost.jpg"
    sidecar_path(image).write_bytes(text)
    with pytest.raises(InputError) as error:
        read_recipe(image)
    assert expected in one_line(error, sidecar_path(image))


def test_a_sidecar_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    image = tmp_path / "lost.jpg"
    sidecar_path(image).write_bytes(b"\xef\xbb\xbf" + json.dumps(RECIPE).encode())
    assert read_recipe(image) == RECIPE


def test_parse_recipe_names_its_source() -> None:
    with pytest.raises(InputError, match=r"^x\.json: the recipe is damaged"):
        parse_recipe("[", "x.json")
    assert parse_recipe('{"a": NaN}') == {"a": None}


def test_many_empty_chunks_end_in_bounded_time(tmp_path: Path) -> None:
    empty = png_chunk(b"abCD", b"")
    data = plain_png()
    path = write(tmp_path, "many.png", data[:33] + empty * (metadata._MAX_STEPS + 10) + data[33:])
    with pytest.raises(InputError) as error:
        finishes_within(60, lambda: read_recipe(path))
    assert "no Painterly recipe" in one_line(error, path)


# -- 4. decoding: quiet, and every failure one line -------------------------------------------------


def _tiff_with_oversized_tag(bits: int = 8) -> bytes:
    """A TIFF whose Software tag claims a megabyte: Pillow warns, tifffile logs an error."""
    out = io.BytesIO()
    dtype = np.uint8 if bits == 8 else np.uint16
    tifffile.imwrite(out, np.zeros((4, 4, 3), dtype), photometric="rgb", metadata=None, software="x" * 10)
    data = bytearray(out.getvalue())
    (directory,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[directory : directory + 2])
    for index in range(count):
        entry = directory + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 305:
            data[entry + 4 : entry + 8] = struct.pack("<I", 10**6)
    return bytes(data)


@pytest.mark.parametrize("bits", [8, 16])
def test_decoding_warnings_go_to_the_debug_log(
    bits: int, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    data = _tiff_with_oversized_tag(bits)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        loaded = load_image_bytes(data, "odd.tif")
    assert loaded.size == (4, 4)
    assert caught == []
    assert capfd.readouterr().err == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Tag data larger than file" in r.getMessage() for r in caplog.records)
    if bits == 16:
        assert any(
            r.getMessage().startswith("tifffile:") for r in caplog.records if r.name == "engine.imageio"
        )


def test_pillows_own_error_logs_go_to_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    # Pillow logs "More samples per pixel than can be decoded" at ERROR level before it raises.
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "TIFF")
    data = bytearray(out.getvalue())
    (directory,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[directory : directory + 2])
    for index in range(count):
        entry = directory + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 277:
            data[entry + 2 : entry + 12] = struct.pack("<HII", 3, 1, 65535)
    with caplog.at_level(logging.DEBUG), pytest.raises(InputError) as error:
        load_image_bytes(bytes(data), "many-samples.tif")
    one_line(error, "many-samples.tif")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "More samples per pixel" in caplog.text


@pytest.mark.skipif(not features.check("libtiff"), reason="Pillow without libtiff")
def test_libtiff_errors_do_not_reach_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    # A compressed TIFF (decoded by libtiff) with a private tag of an undefined type: libtiff's
    # default error handler would print "TIFFFetchNormalTag: ..." on file descriptor 2.
    out = io.BytesIO()
    tifffile.imwrite(
        out, np.zeros((8, 8, 3), np.uint8), photometric="rgb", compression="zlib", metadata=None,
        extratags=[(65000, "H", 1, 7, True)],
    )  # fmt: skip
    data = bytearray(out.getvalue())
    (directory,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[directory : directory + 2])
    for index in range(count):
        entry = directory + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 65000:
            data[entry + 2 : entry + 4] = struct.pack("<H", 99)
    capfd.readouterr()
    assert load_image_bytes(bytes(data)).size == (8, 8)
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds libtiff through /proc/self/maps")
@pytest.mark.skipif(not features.check("libtiff"), reason="Pillow without libtiff")
def test_pillows_libtiff_is_found() -> None:
    # If this fails, _silence_libtiff silently does nothing any more.
    assert imageio._loaded_libtiffs()


def test_counting_frames_is_never_asked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # n_frames walks every directory of a TIFF; a hostile file can chain millions.
    def refuse(self: object) -> int:
        raise AssertionError("n_frames was read")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(refuse))
    out = io.BytesIO()
    frames = [Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(3)]
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.INFO):
        loaded = load_image_bytes(out.getvalue(), "frames.tif")
    assert loaded.size == (4, 4)
    assert "several frames" in caplog.text


def test_a_zlib_bomb_in_a_16_bit_tiff_strip_stays_small() -> None:
    out = io.BytesIO()
    tifffile.imwrite(
        out, np.zeros((64, 64, 3), np.uint16), photometric="rgb", metadata=None, compression="zlib"
    )
    data = bytearray(out.getvalue())
    deflater = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    bomb = b"".join(deflater.compress(zeros) for _ in range(256)) + deflater.flush()  # 256 MiB of zeros
    (directory,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[directory : directory + 2])
    for index in range(count):
        entry = directory + 2 + 12 * index
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag == 273:
            data[entry + 2 : entry + 12] = struct.pack("<HII", 4, 1, len(data))
        if tag == 279:
            data[entry + 2 : entry + 12] = struct.pack("<HII", 4, 1, len(bomb))
    data += bomb
    tracemalloc.start()
    try:
        loaded = load_image_bytes(bytes(data), "bomb.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.size == (64, 64) and float(loaded.rgb.max()) == 0.0
    assert peak < 64 << 20, f"peak {peak >> 20} MiB"


def test_a_zero_sized_image_is_refused() -> None:
    header = b"II*\x00" + struct.pack("<I", 8)
    entries = [(256, 4, 1, 0), (257, 4, 1, 4), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 0), (279, 4, 1, 0)]
    directory = (
        struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    )
    with pytest.raises(InputError) as error:
        load_image_bytes(header + directory, "zero.tif")
    one_line(error, "zero.tif")


def test_an_unreadable_exif_orientation_is_one_warning_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("damaged EXIF")

    monkeypatch.setattr(imageio.ImageOps, "exif_transpose", broken)
    path = write(tmp_path, "a\x1b[2Jb.png", plain_png())
    with caplog.at_level(logging.WARNING):
        assert load_image(path).size == (4, 4)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is None and "\x1b" not in record.getMessage()


@pytest.mark.parametrize(
    ("target", "exception", "expected"),
    [
        ("_pixels", MemoryError(), "not enough memory"),
        ("_pixels", RecursionError("deep"), "damaged"),
        ("_pixels", KeyError("x" * 10_000), "damaged"),
        ("_pixels", OSError("line one\nline two\x1b]0;title\x07"), "damaged"),
        ("_to_srgb", struct.error("bad"), "damaged"),
        ("_upright", ZeroDivisionError(), "damaged"),
    ],
)
def test_any_exception_while_decoding_is_one_line(
    monkeypatch: pytest.MonkeyPatch, target: str, exception: BaseException, expected: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise exception

    monkeypatch.setattr(imageio, target, fail)
    with pytest.raises(InputError) as error:
        load_image_bytes(plain_png(), "x.png")
    message = one_line(error, "x.png")
    assert expected in message and len(message) < 400


def test_a_colour_profile_that_fails_oddly_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise IndexError("lcms")

    monkeypatch.setattr(imageio.ImageCms, "profileToProfile", fail)
    out = io.BytesIO()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.new("RGB", (4, 4)).save(out, "PNG", icc_profile=profile)
    with pytest.raises(InputError) as error:
        load_image_bytes(out.getvalue(), "x.png")
    one_line(error, "x.png")


def test_tifffile_failing_falls_back_to_8_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tifffile broke")

    out = io.BytesIO()
    tifffile.imwrite(out, np.full((4, 4, 3), 65535, np.uint16), photometric="rgb", metadata=None)
    monkeypatch.setattr(tifffile, "TiffFile", fail)
    assert float(load_image_bytes(out.getvalue()).rgb.min()) == 1.0


def test_one_bit_signed_samples_do_not_divide_by_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_tiff_sample_format", lambda img: (1, True))
    gray = imageio._high_bit_gray(Image.new("I", (3, 2), 1), "TIFF", "x.tif")
    assert gray.shape == (2, 3, 3) and np.isfinite(gray).all()


# -- beyond the list: files cut into so many parts that decoding would take minutes ------------------


def _progressive_jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
        out, "JPEG", progressive=True
    )
    return out.getvalue()


def test_a_jpeg_with_thousands_of_scans_is_refused_at_once() -> None:
    # Each scan is decoded over the whole image: 2,000 empty scans of a large image take minutes.
    data = _progressive_jpeg()
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    hostile = data[:end] + data[last_scan:end] * 2000 + data[end:]
    with pytest.raises(InputError) as error:
        finishes_within(10, lambda: load_image_bytes(hostile, "scans.jpg"))
    assert "2,0" in one_line(error, "scans.jpg") and "scans" in str(error.value)
    assert load_image_bytes(data, "fine.jpg").size == (16, 16)


def test_pngs_and_jpeg_headers_of_too_many_parts_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "_MAX_PNG_CHUNKS", 100)
    monkeypatch.setattr(imageio, "_MAX_JPEG_SEGMENTS", 100)
    png = plain_png()
    empty = png_chunk(b"abCD", b"")
    assert load_image_bytes(png[:33] + empty * 50 + png[33:]).size == (4, 4)
    with pytest.raises(InputError) as error:
        load_image_bytes(png[:33] + empty * 101 + png[33:], "chunks.png")
    assert "PNG chunks" in one_line(error, "chunks.png")
    jpeg = _progressive_jpeg()
    for filler in (b"\xff\xfe\x00\x02", b"\xff"):
        assert load_image_bytes(jpeg[:2] + filler * 50 + jpeg[2:]).size == (16, 16)
        with pytest.raises(InputError) as error:
            load_image_bytes(jpeg[:2] + filler * 101 + jpeg[2:], "segments.jpg")
        assert "header" in one_line(error, "segments.jpg")
