"""The recipe inside a result file, read back without decoding a pixel.

Where each format keeps it is described in engine.encode.  The metadata is
parsed directly rather than through Pillow, whose decompression-bomb limit
(about 179 megapixels) would otherwise refuse the largest images Painterly
itself can make (16384 x 16384) before any metadata is read.

Any file may come from a stranger, so every parser here is written against
hostile input: every length is checked against the end of the file before it
is used, every walk over chunks or segments has a step limit, compressed text
is inflated up to a limit, XML may not declare a DTD or entities, and the JSON
is parsed by ``parse_recipe`` alone.  Whatever is wrong ends in one
``InputError`` line that names the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import xml.parsers.expat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from engine.errors import InputError
from engine.files import describe_os_error, open_regular_file, read_regular_file, safe_exists

log = logging.getLogger(__name__)

RECIPE_KEY = "painterly:recipe"
SIDECAR_SUFFIX = ".json"
XMP_NAMESPACE = "urn:painterly:xmp:1.0/"
TIFF_DESCRIPTION_TAG = 270

# Reading a recipe reads an image's headers, never its pixels, so the size of the image file does
# not matter for memory; it only has to be a regular file (a FIFO would block the read forever,
# /dev/zero never ends). So the limit is "any file": far above the largest file Painterly writes
# (16384 x 16384 RGBA at 16 bits is 2 GiB uncompressed).
_IMAGE_FILE_LIMIT = 1 << 40
# A recipe is a few KiB of JSON. This is a thousand times that, and it bounds what json.loads
# builds (Python objects can take some 25 times the size of their text) to about 100 MB.
RECIPE_TEXT_LIMIT = 4 << 20
# A WebP's XMP packet may come from other tools and is read whole to look inside; nothing
# legitimate comes close to this.
_XMP_LIMIT = 64 << 20
# How many chunks or segments a header walk steps over before it gives up: a PNG of the largest
# size Painterly makes has some 25,000 (IDAT chunks of 64 KiB); a file of millions of empty
# chunks would otherwise keep `painterly info` busy for minutes.
_MAX_STEPS = 1 << 20
# Painterly's recipes nest 5 levels deep (recipe, job, params, style_layers, one layer). Deeper
# JSON is not a recipe, and printing it (json.dumps with an indent recurses in Python) could
# exhaust the stack.
_MAX_DEPTH = 32


class _Damaged(Exception):
    """The recipe was found in the file but cannot be used (the message says why)."""


def sidecar_path(path: str | Path) -> Path:
    """Where the recipe goes when the image format cannot hold it: ``<name>.<ext>.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe saved with an image: embedded, or else from its JSON sidecar.

    Every problem (no such file, not a regular file, no recipe, a damaged one) is one
    ``InputError`` naming the file.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):  # "/", ".": a folder, and no name to put a sidecar beside
        raise InputError("is a folder, not an image file", path)
    sidecar = sidecar_path(path)
    has_sidecar = safe_exists(sidecar)
    problem: InputError | None = None
    if safe_exists(path) or not has_sidecar:
        # Without a sidecar to fall back on, the image's own problem is the answer: not found,
        # a folder, a pipe, a device, a name too long.
        with open_regular_file(path, limit=_IMAGE_FILE_LIMIT, what="image") as stream:
            try:
                text = _embedded_recipe(stream, path)
                if text is not None:
                    return parse_recipe(text, path)
            except InputError as exc:
                problem = exc
            except _Damaged as exc:
                problem = InputError(f"the recipe is damaged: {exc}", path)
            except OSError as exc:
                problem = InputError(f"cannot read the file: {describe_os_error(exc)}", path)
            except MemoryError:
                problem = InputError("not enough memory to read its recipe", path)
    if has_sidecar:
        # An image whose own recipe is missing or unusable may still have a sidecar.
        data = read_regular_file(sidecar, limit=RECIPE_TEXT_LIMIT, what="recipe file")
        try:
            # utf-8-sig: a sidecar edited in Notepad starts with a byte-order mark.
            return parse_recipe(data.decode("utf-8-sig"), sidecar)
        except UnicodeDecodeError:
            raise InputError("the recipe is damaged: it is not UTF-8 text", sidecar) from None
    if problem is not None:
        raise problem
    raise InputError(
        "has no Painterly recipe (it was not saved by Painterly, or the recipe was removed)", path
    )


def parse_recipe(text: str, source: str | Path | None = None) -> dict[str, Any]:
    """The recipe object in ``text``; anything else is one "the recipe is damaged" ``InputError``.

    The only place recipe JSON is parsed, so every reader gets the same rules: an object at the
    top, at most ``_MAX_DEPTH`` levels deep, no key twice (two parsers could pick different ones,
    so the recipe shown would not be the recipe used), and no NaN or infinities, which JSON does
    not have but Python's json accepts: ``NaN``, ``Infinity`` and numbers too large for a float
    (``1e999``) read as None, as the recipe writer stores a non-finite loss, so that what
    ``read_recipe`` returns is always standard JSON again.
    """

    def damaged(problem: str) -> InputError:
        return InputError(f"the recipe is damaged: {problem}", source)

    if len(text) > RECIPE_TEXT_LIMIT:
        raise damaged(f"it is too large ({len(text):,} characters)")
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise damaged("it is nested too deeply") from None
    except _DuplicateKey as exc:
        raise damaged(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise damaged(str(exc)) from None
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (a denial-of-service guard).
        raise damaged("it has a number with too many digits") from None
    except MemoryError:
        raise damaged("it is too large to read") from None
    if not isinstance(value, dict):
        raise damaged("it is not a JSON object")
    if _too_deep(value, _MAX_DEPTH):
        raise damaged(f"it is nested more than {_MAX_DEPTH} levels deep")
    return value


class _DuplicateKey(ValueError):
    pass


def _no_constant(name: str) -> None:
    # NaN, Infinity, -Infinity: not JSON; the writer stores a non-finite number as null.
    return None


def _finite_float(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None  # 1e999 reads as infinity


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 40 else key[:40] + "..."
                raise _DuplicateKey(f"the key {shown!r} appears twice in one object")
            seen.add(key)
    return result


def _too_deep(value: Any, limit: int) -> bool:
    # Iterative: a recursive walk is what a deep value would break.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


# -- finding the recipe in an image's headers -----------------------------------------------------


def _embedded_recipe(f: IO[bytes], path: Path) -> str | None:
    """The recipe text stored in the image's metadata, or None where there is none.

    Raises ``_Damaged`` where the recipe is there but unusable. A file damaged before its recipe
    is reached has none as far as we can tell: None. No pixels are decoded here.
    """
    size = os.fstat(f.fileno()).st_size
    head = f.read(16)
    parser: Callable[[IO[bytes], int], str | None] | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        parser = _png_recipe
    elif head.startswith(b"\xff\xd8"):
        parser = _jpeg_recipe
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        parser = _webp_recipe
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        parser = _tiff_recipe
    if parser is None:
        return None
    try:
        return parser(f, size)
    except _Truncated:
        log.debug("%s ends inside its headers", path)
        return None


class _Truncated(Exception):
    """The file ends (or a length points) past where its structure says it continues."""


def _read_at(f: IO[bytes], offset: int, count: int, size: int) -> bytes:
    """Exactly ``count`` bytes at ``offset``, or ``_Truncated`` if the file is not that long."""
    if offset < 0 or count < 0 or offset + count > size:
        raise _Truncated
    f.seek(offset)
    data = f.read(count)
    if len(data) != count:  # the file shrank while we read it
        raise _Truncated
    return data


def _utf8(data: bytes) -> str:
    if len(data) > RECIPE_TEXT_LIMIT:
        raise _Damaged(f"it is too large ({len(data):,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Damaged("it is not UTF-8 text") from None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        # At most the limit comes out, however well the data compresses (a zlib bomb).
        text = inflater.decompress(data, RECIPE_TEXT_LIMIT)
    except zlib.error:
        raise _Damaged("its compressed text is corrupt") from None
    if inflater.unconsumed_tail:
        raise _Damaged("its compressed text is too large")
    if not inflater.eof:
        raise _Damaged("its compressed text is cut short")
    return text


def _png_recipe(f: IO[bytes], size: int) -> str | None:
    key = RECIPE_KEY.encode("latin-1") + b"\x00"
    position = 8
    for _ in range(_MAX_STEPS):
        length, kind = struct.unpack(">I4s", _read_at(f, position, 8, size))
        body_at = position + 8
        if length > 0x7FFFFFFF:  # the PNG limit: a larger length is damage
            return None
        _read_at(f, body_at + length, 4, size)  # the CRC must be there too
        if kind == b"IEND":
            return None
        if kind == b"iTXt" and length >= len(key) and _read_at(f, body_at, len(key), size) == key:
            if length > len(key) + RECIPE_TEXT_LIMIT + 1024:  # text plus flags and empty tags
                raise _Damaged(f"its PNG chunk is too large ({length:,} bytes)")
            body = _read_at(f, body_at, length, size)
            (crc,) = struct.unpack(">I", _read_at(f, body_at + length, 4, size))
            if zlib.crc32(kind + body) != crc:
                raise _Damaged("its PNG chunk fails its checksum")
            return _itxt_text(body[len(key) :])
        position = body_at + length + 4
    return None


def _itxt_text(rest: bytes) -> str:
    """The text of an iTXt chunk after its keyword: flag, method, language\\0, keyword\\0, text."""
    if len(rest) < 2:
        raise _Damaged("its PNG text chunk is cut short")
    compressed, method = rest[0], rest[1]
    if compressed not in (0, 1) or (compressed and method != 0):
        raise _Damaged("its PNG text chunk uses an unknown compression")
    _language, found, rest = rest[2:].partition(b"\x00")
    if found:
        _translated, found, rest = rest.partition(b"\x00")
    if not found:
        raise _Damaged("its PNG text chunk is cut short")
    return _utf8(_inflate(rest) if compressed else rest)


def _jpeg_recipe(f: IO[bytes], size: int) -> str | None:
    prefix = f"{RECIPE_KEY} ".encode("ascii")
    position = 2
    for _ in range(_MAX_STEPS):
        marker_bytes = _read_at(f, position, 2, size)
        if marker_bytes[0] != 0xFF:
            return None  # lost sync: not a marker where one belongs
        marker = marker_bytes[1]
        if marker == 0xFF:  # a fill byte
            position += 1
            continue
        if marker in (0xDA, 0xD9, 0x00):
            return None  # the scan (or the end) starts: the header segments are over
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            position += 2  # markers without a length
            continue
        (length,) = struct.unpack(">H", _read_at(f, position + 2, 2, size))
        if length < 2:
            return None
        if marker == 0xFE:
            body = _read_at(f, position + 4, length - 2, size)
            if body.startswith(prefix):
                return _utf8(body[len(prefix) :])
        position += 2 + length
    return None


def _webp_recipe(f: IO[bytes], size: int) -> str | None:
    position = 12
    for _ in range(_MAX_STEPS):
        kind, length = struct.unpack("<4sI", _read_at(f, position, 8, size))
        if kind == b"XMP ":
            if length > _XMP_LIMIT:
                return None  # not ours: Painterly's packets are a little larger than the recipe
            return _recipe_from_xmp(_read_at(f, position + 8, length, size))
        position += 8 + length + (length & 1)  # chunks are padded to an even size
    return None


def _tiff_recipe(f: IO[bytes], size: int) -> str | None:
    """The recipe in the first ImageDescription of the first directory, read without tifffile.

    A few lines of struct keep every offset checked and the work bounded, which a general TIFF
    reader (that also follows other directories and tags) does not promise for a hostile file.
    """
    head = _read_at(f, 0, 16 if size >= 16 else 8, size)
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    if big:
        if len(head) < 16:
            return None
        offset_size, zero, directory = struct.unpack(order + "HHQ", head[4:16])
        if offset_size != 8 or zero != 0:
            return None
        count_format, entry_format, entry_size, inline = "Q", "HHQ8s", 20, 8
    else:
        (directory,) = struct.unpack(order + "I", head[4:8])
        count_format, entry_format, entry_size, inline = "H", "HHI4s", 12, 4
    count_bytes = struct.calcsize(count_format)
    (count,) = struct.unpack(order + count_format, _read_at(f, directory, count_bytes, size))
    if count > 0xFFFF:
        return None
    entries = _read_at(f, directory + count_bytes, count * entry_size, size)
    for index in range(count):
        tag, kind, number, value = struct.unpack_from(order + entry_format, entries, index * entry_size)
        # ASCII (2) as TIFF writers store it; BYTE (1) and UNDEFINED (7) also hold one byte each.
        if tag != TIFF_DESCRIPTION_TAG or kind not in (1, 2, 7):
            continue
        if number <= inline:
            data = value[:number]
        else:
            (at,) = struct.unpack(order + ("Q" if big else "I"), value)
            if number > RECIPE_TEXT_LIMIT + 1:
                # Too large for a recipe; say so only if it looks like one (other tools keep
                # large XML descriptions here).
                if _read_at(f, at, 64, size).lstrip().startswith(b"{"):
                    raise _Damaged(f"it is too large ({number:,} bytes)")
                continue
            data = _read_at(f, at, number, size)
        text = data.split(b"\x00", 1)[0].strip()
        if text.startswith(b"{"):
            return _utf8(text)
    return None


def _recipe_from_xmp(xmp: bytes) -> str | None:
    """The text of the first non-empty ``painterly:recipe`` element of an XMP packet, or None.

    Parsed with expat, refusing any DTD: our packets have none, and without one there are no
    entities to expand (billion laughs) or to fetch. The refusal is by parser events, not by
    looking for "<!DOCTYPE" in the bytes, so a packet in UTF-16 cannot sneak one past it.
    """
    recipe_tag = f"{XMP_NAMESPACE} recipe"
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    state = {"depth": 0, "inside": 0}
    pieces: list[str] = []
    total = [0]

    class _Found(Exception):
        pass

    class _Refused(Exception):
        pass

    def refuse(*_args: object) -> None:
        raise _Refused

    def start(name: str, _attributes: object) -> None:
        state["depth"] += 1
        if not state["inside"] and name == recipe_tag:
            state["inside"] = state["depth"]

    def end(_name: str) -> None:
        if state["inside"] == state["depth"]:
            state["inside"] = 0
            if "".join(pieces).strip():
                raise _Found
            pieces.clear()
            total[0] = 0
        state["depth"] -= 1

    def text(data: str) -> None:
        if state["inside"] == state["depth"]:  # the element's own text, not a child's
            total[0] += len(data)
            if total[0] > RECIPE_TEXT_LIMIT:
                raise _Damaged("it is too large")
            pieces.append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(xmp.strip(b"\x00"), True)
    except _Found:
        return "".join(pieces)
    except (_Refused, xml.parsers.expat.ExpatError, ValueError) as exc:
        # Ours (it names our namespace) but unreadable: say so rather than "no recipe".
        if XMP_NAMESPACE.encode("ascii") in xmp:
            problem = "declares a DTD" if isinstance(exc, _Refused) else "is not well-formed XML"
            raise _Damaged(f"its XMP packet {problem}") from None
        log.debug("ignoring an XMP packet that is damaged or declares a DTD", exc_info=True)
    return None
