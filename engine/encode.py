"""Encoding results: pixels and their recipe into PNG, JPEG, WebP or TIFF, atomically.

The format comes from the extension; an sRGB ICC profile and the recipe (the
JSON description of how the image was made) are embedded, and the file is
published through engine.files.atomic_write, so a crash or a full disk never
leaves a half-written file or destroys the one that was there.  Where the
recipe is stored, per format:

========  ==============================================================
PNG       iTXt chunk ``painterly:recipe`` (8 and 16 bit)
JPEG      a COM segment ``painterly:recipe <json>``; recipes over the
          64 KiB segment limit go to a ``<name>.jpg.json`` sidecar
WebP      an XMP packet with a ``painterly:recipe`` element
TIFF      ImageDescription (tag 270)
========  ==============================================================

JPEG cannot hold alpha, so it is dropped with a warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from engine.errors import InputError, OutputExistsError
from engine.files import TEMP_PREFIX, atomic_write, describe_os_error, name_max, safe_exists
from engine.imageio import srgb_icc_bytes
from engine.metadata import (
    RECIPE_KEY,
    XMP_NAMESPACE,
    sidecar_path,
)

log = logging.getLogger(__name__)

OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# Formats whose 16-bit output is implemented (Pillow cannot write 16-bit RGB
# PNG or TIFF, so both have their own writers below).
SIXTEEN_BIT_FORMATS: tuple[str, ...] = ("PNG", "TIFF")

_SUPPORTED_OUTPUTS = ", ".join(OUTPUT_FORMATS)
# The largest JPEG COM segment payload: the 16-bit length counts itself.
_JPEG_COMMENT_LIMIT = 65533
# libwebp's hard limit on either side.
_WEBP_MAX_SIDE = 16383
_JPEG_MAX_SIDE = 65535
_TIFF_ICC_TAG = 34675
# How many bytes of 16-bit PNG rows are filtered and compressed at a time.
_PNG_BAND_BYTES = 1 << 22


def output_format(path: str | Path) -> str:
    """Pillow format name for an output path, from its extension."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise InputError(f"unknown output file type ({shown}); use one of {_SUPPORTED_OUTPUTS}", path)
    return fmt


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check that a result could be saved at ``path``; call before a run starts.

    Raises ``InputError`` for an unknown extension, a name too long for the folder's filesystem,
    a folder, a missing or unwritable parent folder, and ``OutputExistsError`` for an existing
    file unless ``overwrite``.
    """
    path = Path(path).expanduser()
    output_format(path)
    try:
        _check_name_length(path)
        if path.is_dir():
            raise InputError("is a folder; give a file name such as result.png", path)
        parent = path.parent
        if not parent.exists():
            raise InputError(f"the folder {parent} does not exist", path)
        if not parent.is_dir():
            raise InputError(f"{parent} is not a folder", path)
        if safe_exists(path) and not overwrite:
            raise OutputExistsError("already exists; pass --overwrite to replace it", path)
    except OSError as exc:  # e.g. a path longer than the system allows
        raise InputError(f"cannot use this output path: {describe_os_error(exc)}", path) from None
    # os.access is unreliable for folders on Windows and network shares; creating a file is the real test.
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=TEMP_PREFIX):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to the folder {parent}: {describe_os_error(exc)}", path) from None
    return path


def _check_name_length(path: Path) -> None:
    limit = name_max(path.parent if path.parent.is_dir() else Path("."))
    length = len(os.fsencode(path.name))
    if length > limit:
        raise InputError(f"the file name is {length} bytes long; this folder allows at most {limit}", path)


def check_encodable(
    path: Path, *, size: tuple[int, int] | None, bit_depth: int = 8, quality: int = 95, dpi: float = 0.0
) -> str:
    """The output format for ``path`` once the options and the (width, height) suit it.

    Everything a format cannot store is refused here, so it is said before a run and not after.
    """
    fmt = output_format(path)
    if isinstance(bit_depth, bool) or bit_depth not in (8, 16):
        raise InputError(f"bit depth must be 8 or 16, got {bit_depth!r}", path)
    if bit_depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise InputError("16-bit output needs a .png, .tif or .tiff file", path)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be a whole number from 1 to 100, got {quality!r}", path)
    if not (isinstance(dpi, (int, float)) and not isinstance(dpi, bool) and math.isfinite(dpi)):
        raise InputError(f"dpi must be a finite number, got {dpi!r}", path)
    if not 0 <= dpi <= 100_000:
        raise InputError(f"dpi must be a number from 0 to 100000, got {dpi!r}", path)
    if size is not None:
        width, height = size
        if fmt == "WEBP" and max(width, height) > _WEBP_MAX_SIDE:
            raise InputError(
                f"WebP images can be at most {_WEBP_MAX_SIDE} pixels on a side "
                f"(this one would be {width} x {height}); use PNG or TIFF",
                path,
            )
        if fmt == "JPEG" and max(width, height) > _JPEG_MAX_SIDE:
            raise InputError(
                f"JPEG images can be at most {_JPEG_MAX_SIDE} pixels on a side "
                f"(this one would be {width} x {height}); use PNG or TIFF",
                path,
            )
    return fmt


def save_image(
    path: str | Path,
    image: np.ndarray,
    *,
    recipe: Mapping[str, Any] | None = None,
    alpha: np.ndarray | None = None,
    overwrite: bool = False,
    bit_depth: int = 8,
    quality: int = 95,
    dpi: float = 0.0,
) -> Path:
    """Save float32 H x W x 3 [0, 1] pixels (clipped, rounded to nearest) atomically.

    ``dpi`` (when above 0) is written as the file's print resolution where the format has one
    (PNG pHYs, JPEG JFIF, TIFF resolution tags; WebP has none).

    The format comes from the extension; the recipe is embedded (or written
    to a sidecar, see the module docstring).  An existing file is only
    replaced with ``overwrite=True``; without it, the check is made by
    hard-linking the finished temporary file into place, which fails if the
    name was taken meanwhile (on filesystems without hard links the check is
    repeated just before the rename instead, leaving a tiny race).
    """
    path = check_output_path(path, overwrite=overwrite)
    pixels = _validated_pixels(image)
    height, width = pixels.shape[:2]
    fmt = check_encodable(path, size=(width, height), bit_depth=bit_depth, quality=quality, dpi=dpi)
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (height, width):
            raise ValueError(f"alpha has shape {alpha.shape}, the image is {height} x {width}")
        alpha = np.clip(np.nan_to_num(alpha.astype(np.float32), nan=1.0), 0.0, 1.0)
    if fmt == "JPEG" and alpha is not None:
        log.warning("%s: JPEG cannot store transparency; the alpha channel is dropped", path)
        alpha = None

    recipe_json = None if recipe is None else _recipe_json(recipe)
    embedded, sidecar_text = _plan_recipe(fmt, recipe_json)
    sidecar = sidecar_path(path) if sidecar_text is not None else None
    if sidecar is not None and safe_exists(sidecar) and not overwrite:
        raise OutputExistsError("already exists; pass --overwrite to replace it", sidecar)

    writer = _writer(fmt, bit_depth, pixels, alpha, embedded, quality, float(dpi))
    atomic_write(path, writer, overwrite=overwrite)
    if sidecar is not None and sidecar_text is not None:
        payload = sidecar_text.encode("utf-8")
        try:
            atomic_write(sidecar, lambda fp: fp.write(payload), overwrite=overwrite)
        except InputError as exc:
            # The image itself is safely saved; only the recipe is missing.
            raise InputError(f"the image was saved but its recipe could not be written: {exc}") from None
    elif overwrite and sidecar_path(path).is_file():
        # A sidecar left from the file this one replaced would describe the wrong image.
        log.info("removing %s, the recipe of the replaced image", sidecar_path(path))
        sidecar_path(path).unlink(missing_ok=True)
    return path


def _validated_pixels(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected float pixels in [0, 1], got {array.dtype}")
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected an H x W x 3 image, got shape {array.shape}")
    array = np.nan_to_num(array.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(array, 0.0, 1.0)


def _quantize(values: np.ndarray, bits: int) -> np.ndarray:
    top = float(2**bits - 1)
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.ascontiguousarray(np.floor(values * top + 0.5).astype(dtype))


def _recipe_json(recipe: Mapping[str, Any]) -> str:
    try:
        # default=str: a Path or an enum left in a recipe should not lose the whole save.
        text = json.dumps(dict(recipe), default=str, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"recipe is not JSON-serialisable: {exc}") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name that is not valid UTF-8 (bytes like \xe9) reaches us as lone surrogates,
        # which no UTF-8 file can hold. Escaped JSON keeps them exactly: read back, the name
        # gives the same bytes through os.fsencode.
        text = json.dumps(dict(recipe), default=str, ensure_ascii=True)
    return text


def _plan_recipe(fmt: str, recipe_json: str | None) -> tuple[str | None, str | None]:
    """(text to embed, text for a sidecar): at most one of them is set."""
    if recipe_json is None:
        return None, None
    if fmt == "JPEG" and len(_jpeg_comment(recipe_json)) > _JPEG_COMMENT_LIMIT:
        return None, json.dumps(json.loads(recipe_json), indent=2, ensure_ascii=False) + "\n"
    return recipe_json, None


def _jpeg_comment(recipe_json: str) -> bytes:
    # ASCII-only JSON: COM segments have no declared encoding.
    return f"{RECIPE_KEY} ".encode("ascii") + _ascii_json(recipe_json).encode("ascii")


def _ascii_json(recipe_json: str) -> str:
    return json.dumps(json.loads(recipe_json), ensure_ascii=True)


def _xmp_packet(recipe_json: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" xmlns:painterly="{XMP_NAMESPACE}">\n'
        f"   <painterly:recipe>{xml_escape(recipe_json)}</painterly:recipe>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _writer(
    fmt: str,
    bit_depth: int,
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    recipe_json: str | None,
    quality: int,
    dpi: float = 0.0,
) -> Callable[[IO[bytes]], object]:
    """A function that encodes the image into an open binary file."""
    icc = srgb_icc_bytes()
    values = pixels if alpha is None else np.concatenate([pixels, alpha[:, :, None]], axis=2)

    if bit_depth == 16:
        samples = _quantize(values, 16)
        if fmt == "PNG":
            text = {RECIPE_KEY: recipe_json} if recipe_json is not None else {}
            return lambda fp: _write_png16(fp, samples, icc=icc, text=text, dpi=dpi)

        def write_tiff16(fp: IO[bytes]) -> None:
            import tifffile

            extras = {"extrasamples": (2,)} if alpha is not None else {}  # 2: unassociated alpha
            tifffile.imwrite(
                fp,
                samples,
                photometric="rgb",
                compression="zlib",
                predictor=True,
                description=_ascii_json(recipe_json) if recipe_json is not None else None,
                metadata=None,
                extratags=[(_TIFF_ICC_TAG, 7, len(icc), icc, True)],
                **({"resolution": (dpi, dpi), "resolutionunit": "INCH"} if dpi > 0 else {}),
                **extras,
            )

        return write_tiff16

    img = Image.fromarray(_quantize(values, 8))  # H x W x 3 gives RGB, H x W x 4 RGBA
    options: dict[str, Any] = {"icc_profile": icc}
    if dpi > 0 and fmt != "WEBP":
        options["dpi"] = (dpi, dpi)
    if fmt == "PNG":
        if recipe_json is not None:
            info = PngInfo()
            info.add_itxt(RECIPE_KEY, recipe_json)
            options["pnginfo"] = info
    elif fmt == "JPEG":
        # Chroma subsampling smears the fine colour detail that style transfer is about.
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True)
        if recipe_json is not None:
            options["comment"] = _jpeg_comment(recipe_json)
    elif fmt == "WEBP":
        # Quality 100 asks for no loss at all, which WebP can give.
        options.update(quality=quality, method=4, lossless=quality >= 100)
        if recipe_json is not None:
            options["xmp"] = _xmp_packet(_ascii_json(recipe_json))  # XML forbids U+FFFE and the like
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
        if recipe_json is not None:
            options["description"] = _ascii_json(recipe_json)
    return lambda fp: img.save(fp, format=fmt, **options)


def _write_png16(
    fp: IO[bytes], samples: np.ndarray, *, icc: bytes, text: Mapping[str, str], dpi: float = 0.0
) -> None:
    """Write a 16-bit RGB or RGBA PNG, which Pillow cannot."""
    height, width, channels = samples.shape

    def chunk(kind: bytes, body: bytes) -> None:
        fp.write(struct.pack(">I", len(body)) + kind + body)
        fp.write(struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    fp.write(b"\x89PNG\r\n\x1a\n")
    color_type = 2 if channels == 3 else 6
    chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0))
    chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(icc))
    if dpi > 0:
        per_metre = round(dpi / 0.0254)
        chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
    for key, value in text.items():
        # keyword, no compression, compression method, empty language tag and translated keyword.
        chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))

    # Filtered and compressed a band of rows at a time, so a 16384-pixel image needs no
    # full-size temporaries.
    stride = width * channels * 2
    rows_per_band = max(1, _PNG_BAND_BYTES // stride)
    previous = np.zeros(stride, dtype=np.uint8)
    compressor = zlib.compressobj(6)
    for start in range(0, height, rows_per_band):
        band = samples[start : start + rows_per_band].astype(">u2").view(np.uint8).reshape(-1, stride)
        compressed = compressor.compress(_paeth_filter(band, previous, bpp=channels * 2).tobytes())
        previous = band[-1]
        if compressed:
            chunk(b"IDAT", compressed)
    chunk(b"IDAT", compressor.flush())
    chunk(b"IEND", b"")


def _paeth_filter(raw: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter type 4 on rows of bytes, vectorised: encoding only needs the unfiltered neighbours.

    ``previous`` is the (unfiltered) row above the first one, zeros at the top of the image.
    """
    cur = raw.astype(np.int16)
    up = np.concatenate([previous[None].astype(np.int16), cur[:-1]], axis=0)
    left = np.zeros_like(cur)
    left[:, bpp:] = cur[:, :-bpp]
    up_left = np.zeros_like(cur)
    up_left[:, bpp:] = up[:, :-bpp]
    estimate = left + up - up_left
    dist_left = np.abs(estimate - left)
    dist_up = np.abs(estimate - up)
    dist_up_left = np.abs(estimate - up_left)
    predictor = np.where(
        (dist_left <= dist_up) & (dist_left <= dist_up_left),
        left,
        np.where(dist_up <= dist_up_left, up, up_left),
    )
    filtered = ((cur - predictor) & 0xFF).astype(np.uint8)
    return np.concatenate([np.full((raw.shape[0], 1), 4, dtype=np.uint8), filtered], axis=1)
