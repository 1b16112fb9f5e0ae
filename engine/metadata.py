"""The recipe inside a result file, read back without decoding a pixel.

Where each format keeps it is described in engine.encode.  The metadata is
parsed directly rather than through Pillow, whose decompression-bomb limit
(about 179 megapixels) would otherwise refuse the largest images Painterly
itself can make (16384 x 16384) before any metadata is read.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path
from typing import IO, Any

from engine.errors import InputError

log = logging.getLogger(__name__)

RECIPE_KEY = "painterly:recipe"
SIDECAR_SUFFIX = ".json"
XMP_NAMESPACE = "urn:painterly:xmp:1.0/"
TIFF_DESCRIPTION_TAG = 270


def sidecar_path(path: str | Path) -> Path:
    """Where the recipe goes when the image format cannot hold it: ``<name>.<ext>.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe saved with an image: embedded, or else from its JSON sidecar."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not an image file", path)
    sidecar = sidecar_path(path)
    if not path.exists() and not sidecar.exists():
        raise InputError("file not found", path)
    text = _embedded_recipe(path) if path.exists() else None
    source = path
    if text is None and sidecar.is_file():
        try:
            text = sidecar.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the recipe file: {exc}", sidecar) from None
        source = sidecar
    if text is None:
        raise InputError(
            "has no Painterly recipe (it was not saved by Painterly, or the recipe was removed)", path
        )
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the recipe is damaged: {exc}", source) from None
    if not isinstance(recipe, dict):
        raise InputError("the recipe is damaged: it is not a JSON object", source)
    return recipe


def _embedded_recipe(path: Path) -> str | None:
    """The recipe text stored in the image's metadata, or None.

    The metadata is parsed directly rather than through Pillow, whose
    decompression-bomb limit (about 179 megapixels) would otherwise refuse the
    largest images Painterly itself can make (16384 x 16384) before any
    metadata is read; no pixels are decoded here.
    """
    try:
        with path.open("rb") as f:
            head = f.read(16)
            f.seek(0)
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _png_recipe(f)
            if head.startswith(b"\xff\xd8"):
                return _jpeg_recipe(f)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_recipe(f)
            if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                return _tiff_recipe(f)
    except (OSError, ValueError, EOFError, struct.error, zlib.error, UnicodeDecodeError):
        # An unreadable image may still have a sidecar.
        log.debug("reading the recipe of %s failed", path, exc_info=True)
    return None


# Metadata bigger than this is not ours; refusing it keeps a hostile file from exhausting memory.
_METADATA_LIMIT = 64 << 20


def _read_exactly(f: IO[bytes], count: int) -> bytes:
    if count > _METADATA_LIMIT:
        raise ValueError("metadata block too large")
    data = f.read(count)
    if len(data) != count:
        raise EOFError("file ends inside a metadata block")
    return data


def _png_recipe(f: IO[bytes]) -> str | None:
    f.seek(8)
    key = RECIPE_KEY.encode("latin-1") + b"\x00"
    while header := f.read(8):
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return None
        if kind != b"iTXt":
            f.seek(length + 4, io.SEEK_CUR)  # skip the body and the CRC
            continue
        body = _read_exactly(f, length)
        f.seek(4, io.SEEK_CUR)
        if not body.startswith(key):
            continue
        # keyword \0, compression flag, method, language \0, translated keyword \0, text
        compressed = body[len(key)] == 1
        rest = body[len(key) + 2 :]
        _language, _, rest = rest.partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        if compressed:
            inflater = zlib.decompressobj()
            text = inflater.decompress(text, _METADATA_LIMIT)
            if inflater.unconsumed_tail:
                raise ValueError("recipe text too large")
        return text.decode("utf-8")
    return None


def _jpeg_recipe(f: IO[bytes]) -> str | None:
    prefix = f"{RECIPE_KEY} ".encode("ascii")
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            return None  # lost sync: not a marker where one belongs
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker or marker == b"\xda" or marker == b"\xd9":
            return None  # the scan (or the end) starts: the header segments are over
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        (length,) = struct.unpack(">H", _read_exactly(f, 2))
        if length < 2:
            return None
        if code == 0xFE:
            body = _read_exactly(f, length - 2)
            if body.startswith(prefix):
                return body[len(prefix) :].decode("utf-8")
        else:
            f.seek(length - 2, io.SEEK_CUR)


def _webp_recipe(f: IO[bytes]) -> str | None:
    f.seek(12)
    while header := f.read(8):
        if len(header) < 8:
            return None
        kind, length = struct.unpack("<4sI", header)
        if kind == b"XMP ":
            return _recipe_from_xmp(_read_exactly(f, length))
        f.seek(length + (length & 1), io.SEEK_CUR)  # chunks are padded to an even size
    return None


def _tiff_recipe(f: IO[bytes]) -> str | None:
    import tifffile

    try:
        with tifffile.TiffFile(f) as tif:
            tag = tif.pages[0].tags.get(TIFF_DESCRIPTION_TAG)
            description = tag.value if tag is not None else None
    except tifffile.TiffFileError as exc:
        raise ValueError(str(exc)) from exc
    if isinstance(description, bytes):
        description = description.decode("utf-8")
    if isinstance(description, str) and description.lstrip().startswith("{"):
        return description
    return None


def _recipe_from_xmp(xmp: bytes | str) -> str | None:
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None  # our packets have none; refusing them sidesteps entity-expansion tricks
    try:
        root = ElementTree.fromstring(data.strip(b"\x00"))
    except ElementTree.ParseError:
        return None
    for element in root.iter(f"{{{XMP_NAMESPACE}}}recipe"):
        if element.text:
            return element.text
    return None
