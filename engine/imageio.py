"""Reading images safely and writing results atomically with their recipe.

Loading accepts only PNG, JPEG, WebP, TIFF and BMP, whatever the file is
called: Pillow's other plugins (EPS through Ghostscript, PDF, ...) are a
security and support burden a style-transfer app does not need.  Every
problem a file can have becomes one ``InputError`` line that names the file.
Pixels come back as float32 sRGB in [0, 1], upright (EXIF orientation
applied), with alpha split off when the image has transparency.

Saving picks the format from the extension, embeds an sRGB ICC profile and
the recipe (the JSON description of how the image was made), writes to a
temporary file in the target folder and only then moves it into place, so a
crash or a full disk never leaves a half-written file or destroys the one that
was there.  Where the recipe is stored, per format:

========  ==============================================================
PNG       iTXt chunk ``painterly:recipe`` (8 and 16 bit)
JPEG      a COM segment ``painterly:recipe <json>``; recipes over the
          64 KiB segment limit go to a ``<name>.jpg.json`` sidecar
WebP      an XMP packet with a ``painterly:recipe`` element
TIFF      ImageDescription (tag 270)
========  ==============================================================

Known limits: Pillow reduces 16-bit RGB PNGs to 8 bits on reading (16-bit
grayscale PNGs and 16-bit RGB TIFFs keep their precision); JPEG cannot hold
alpha, so it is dropped with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import struct
import tempfile
import warnings
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from engine.errors import InputError, OutputExistsError

log = logging.getLogger(__name__)

ALLOWED_INPUT_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
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

RECIPE_KEY = "painterly:recipe"
SIDECAR_SUFFIX = ".json"
TEMP_PREFIX = ".painterly-"

_SUPPORTED_INPUTS = "PNG, JPEG, WebP, TIFF or BMP"
_SUPPORTED_OUTPUTS = ", ".join(OUTPUT_FORMATS)
# The largest JPEG COM segment payload: the 16-bit length counts itself.
_JPEG_COMMENT_LIMIT = 65533
# libwebp's hard limit on either side.
_WEBP_MAX_SIDE = 16383
_JPEG_MAX_SIDE = 65535
_XMP_NAMESPACE = "urn:painterly:xmp:1.0/"
_TIFF_ICC_TAG = 34675
_TIFF_DESCRIPTION_TAG = 270
_TIFF_ORIENTATION_TAG = 274
# How many bytes of 16-bit PNG rows are filtered and compressed at a time.
_PNG_BAND_BYTES = 1 << 22

# Leading bytes of formats people commonly try, so the message can say what
# the file is rather than only what it is not.
_KNOWN_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF", 0, "PDF documents"),
    (b"%!PS", 0, "PostScript and EPS files"),
    (b"\xc5\xd0\xd3\xc6", 0, "PostScript and EPS files"),
    (b"GIF87a", 0, "GIF images"),
    (b"GIF89a", 0, "GIF images"),
    (b"8BPS", 0, "Photoshop documents"),
    (b"\x00\x00\x01\x00", 0, "ICO icons"),
    (b"ftypheic", 4, "HEIC images"),
    (b"ftypheix", 4, "HEIC images"),
    (b"ftypmif1", 4, "HEIF images"),
    (b"ftypavif", 4, "AVIF images"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000 images"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000 images"),
    (b"\xff\x0a", 0, "JPEG XL images"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL images"),
    (b"<svg", 0, "SVG drawings"),
    (b"<?xml", 0, "SVG and other XML files"),
    (b"PK\x03\x04", 0, "ZIP archives and office documents"),
)


@dataclass(frozen=True)
class LoadedImage:
    """An input image ready for the engine."""

    path: Path | None
    # float32 H x W x 3 in [0, 1], sRGB, upright.
    rgb: np.ndarray
    # float32 H x W in [0, 1] when the image has transparency, else None.
    alpha: np.ndarray | None
    # Of the file's bytes, so a recipe can tell whether an input has changed.
    sha256: str
    # Pillow's format name ("PNG", "JPEG", ...).
    format: str
    # The original Pillow mode ("RGB", "L", "CMYK", "I;16", "RGBA", "P", ...).
    mode: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# -- loading -----------------------------------------------------------------


def load_image(path: str | Path) -> LoadedImage:
    """Read and validate an image file; any problem is an ``InputError``."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not an image file", path)
    try:
        # One read serves both the hash and the decoder, so they always see the same bytes.
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except PermissionError:
        raise InputError("cannot read the file: permission denied", path) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path) from None
    return _decode(data, path, path)


def load_image_bytes(data: bytes, name: str = "pasted image") -> LoadedImage:
    """Like ``load_image`` for image data from the clipboard or a drag."""
    return _decode(bytes(data), name, None)


def _decode(data: bytes, where: str | Path, path: Path | None) -> LoadedImage:
    if not data:
        raise InputError("the file is empty", where)
    unsupported = _sniff_unsupported(data)
    if unsupported:
        raise InputError(
            f"not an image Painterly can read: {unsupported} are not supported; use {_SUPPORTED_INPUTS}",
            where,
        )
    try:
        # Turns Pillow's size warning into an error while decoding.  Warning
        # filters are process-wide (another thread may briefly see this one,
        # which is harmless), and _check_pixel_count enforces the limit anyway.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_INPUT_FORMATS) as img:
                _check_pixel_count(img.size, where)
                fmt = str(img.format)
                mode = img.mode
                if getattr(img, "n_frames", 1) > 1:
                    log.info("%s: has %d frames; using the first", where, img.n_frames)
                img.load()
                rgb, alpha = _pixels(img, fmt, data, where)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(_too_large_message(None), where) from None
    except UnidentifiedImageError:
        raise InputError(
            f"not an image Painterly can read: the data is not a {_SUPPORTED_INPUTS} image", where
        ) from None
    except MemoryError:
        raise InputError("not enough memory to load this image", where) from None
    except Exception as exc:  # Pillow's decoders raise many exception types on damaged data
        log.debug("decoding %s failed", where, exc_info=True)
        raise InputError(f"the image data is damaged or truncated ({exc})", where) from None
    return LoadedImage(
        path=path,
        rgb=rgb,
        alpha=alpha,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        mode=mode,
    )


def _sniff_unsupported(data: bytes) -> str | None:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    for signature, offset, description in _KNOWN_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return description
    return None


def _too_large_message(size: tuple[int, int] | None) -> str:
    limit = Image.MAX_IMAGE_PIXELS
    what = f" ({size[0]} x {size[1]} = {size[0] * size[1]:,} pixels)" if size else ""
    return f"the image is too large to open safely{what}; the limit is {limit:,} pixels"


def _check_pixel_count(size: tuple[int, int], where: str | Path) -> None:
    # Pillow only warns between 1x and 2x its limit; a warning filter set
    # elsewhere could silence that, so check here as well.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and size[0] * size[1] > limit:
        raise InputError(_too_large_message(size), where)


def _pixels(
    img: Image.Image, fmt: str, data: bytes, where: str | Path
) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 sRGB pixels and alpha of a loaded image, upright."""
    if fmt == "TIFF":
        deep = _deep_tiff_pixels(img, data, where)
        if deep is not None:
            return deep
    img = _upright(img, where)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_bit_gray(img, fmt, where), None

    alpha: np.ndarray | None = None
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode in ("RGB", "L") and "transparency" in img.info:
        img = img.convert("RGBA" if mode == "RGB" else "LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")  # un-premultiplies
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "1":
        img = img.convert("L")
    if img.mode in ("RGBA", "LA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / np.float32(255.0)
        if alpha.min() >= 1.0:
            alpha = None  # opaque: carrying it would only make outputs RGBA for nothing
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    rgb_img = _to_srgb(img, where)
    rgb = np.asarray(rgb_img, dtype=np.float32) / np.float32(255.0)
    return np.ascontiguousarray(rgb), alpha


def _upright(img: Image.Image, where: str | Path) -> Image.Image:
    try:
        ImageOps.exif_transpose(img, in_place=True)
        return img
    except Exception:  # a damaged EXIF block should not make the pixels unusable
        log.warning("%s: ignoring unreadable EXIF orientation", where, exc_info=True)
        return img


def _high_bit_gray(img: Image.Image, fmt: str, where: str | Path) -> np.ndarray:
    mode = img.mode
    if mode == "F":
        gray = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    elif mode == "I":
        # Pillow widens 16-bit PNGs (and some TIFFs) to 32-bit "I"; the file says how many bits are real.
        bits, signed = _tiff_sample_format(img) if fmt == "TIFF" else (16, False)
        gray = np.asarray(img, dtype=np.float64) / float(2 ** (bits - 1 if signed else bits) - 1)
    else:
        gray = np.asarray(img).astype(np.float32) / np.float32(65535.0)
    if img.info.get("icc_profile") and not _is_srgb(img.info["icc_profile"], where):
        log.warning("%s: colour profile not applied to a high-bit-depth grayscale image", where)
    gray = np.clip(gray, 0.0, 1.0).astype(np.float32)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _tiff_sample_format(img: Image.Image) -> tuple[int, bool]:
    """(bits per sample, signed) of a TIFF whose pixels Pillow widened to 32-bit integers."""
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return 16, False

    def first(value: Any) -> Any:
        return value[0] if isinstance(value, tuple) and value else value

    bits = first(tags.get(258))
    signed = first(tags.get(339)) == 2  # SampleFormat 2: two's complement
    return (int(bits) if isinstance(bits, int) and 1 <= bits <= 32 else 16), signed


def _to_srgb(img: Image.Image, where: str | Path) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "L", "CMYK", "LAB") and not _is_srgb(icc, where):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            log.warning("%s: ignoring a colour profile that cannot be applied (%s)", where, exc)
    if img.mode == "LAB":
        try:
            lab = ImageCms.createProfile("LAB")
            converted = ImageCms.profileToProfile(img, lab, _srgb_profile(), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, ValueError) as exc:
            raise InputError(f"cannot convert its Lab colours to RGB ({exc})", where) from None
    try:
        return img.convert("RGB")
    except ValueError:
        raise InputError(f"its colour mode {img.mode} is not supported", where) from None


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_bytes() -> bytes:
    """The sRGB ICC profile embedded in every saved image."""
    return _srgb_profile().tobytes()


def _is_srgb(icc: bytes, where: str | Path) -> bool:
    """Whether an embedded profile is (a variant of) sRGB, so converting would only add rounding."""
    if icc == srgb_icc_bytes():
        return True
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        log.warning("%s: ignoring an unreadable colour profile", where)
        return True
    return "srgb" in description.lower()


def _deep_tiff_pixels(
    img: Image.Image, data: bytes, where: str | Path
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Full-precision pixels of a 16-bit RGB(A) TIFF, which Pillow reduces to 8 bits.

    None means "let Pillow do it": anything unusual (other layouts, a colour
    profile to apply, a compression tifffile cannot decode here) takes the
    8-bit path instead of failing.
    """
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return None
    bits = tags.get(258)
    bits = tuple(bits) if isinstance(bits, tuple) else (bits,)
    samples = tags.get(277, 1)
    if tags.get(262) != 2 or samples not in (3, 4) or any(b != 16 for b in bits):
        return None
    icc = img.info.get("icc_profile")
    if icc and not _is_srgb(icc, where):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            if int(page.planarconfig) != 1:  # colour planes stored apart: let Pillow handle it
                return None
            # Read here because Pillow applies and then forgets a TIFF's orientation when it loads.
            orientation_tag = page.tags.get(_TIFF_ORIENTATION_TAG)
            orientation = orientation_tag.value if orientation_tag is not None else 1
            extra_samples = tuple(int(v) for v in page.extrasamples)
            array = page.asarray()
    except Exception:  # e.g. a compression that needs the optional imagecodecs
        log.debug("%s: tifffile could not read it; using Pillow's 8-bit reading", where, exc_info=True)
        return None
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] != samples:
        return None
    array = _orient(array, orientation)
    values = array.astype(np.float32) / np.float32(65535.0)
    rgb = values[:, :, :3]
    alpha = None
    if samples == 4:
        kind = extra_samples[0] if extra_samples else 0
        if kind in (1, 2):
            alpha = values[:, :, 3]
            if kind == 1:
                # Associated alpha: the stored colours are premultiplied.
                with np.errstate(divide="ignore", invalid="ignore"):
                    rgb = np.where(alpha[:, :, None] > 0, rgb / alpha[:, :, None], 0.0)
            if alpha.min() >= 1.0:
                alpha = None
    rgb = np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)
    return rgb, None if alpha is None else np.ascontiguousarray(alpha)


def _orient(array: np.ndarray, orientation: Any) -> np.ndarray:
    """Apply a TIFF/EXIF orientation value the way ImageOps.exif_transpose does."""
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(orientation) if isinstance(orientation, int) else None
    return np.ascontiguousarray(op(array)) if op else array


# -- resizing ------------------------------------------------------------------


def resize_long_edge(rgb: np.ndarray, long_edge: int) -> np.ndarray:
    """Resize so the longer side is ``long_edge`` pixels, keeping the aspect ratio.

    Works on H x W x C and on H x W (alpha).  Lanczos on float32 planes keeps
    the precision of 16-bit inputs; its overshoot is clipped back into [0, 1].
    """
    if long_edge < 1:
        raise ValueError(f"long edge must be at least 1 pixel, got {long_edge}")
    if rgb.ndim not in (2, 3) or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an H x W or H x W x C image, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    scale = long_edge / max(height, width)
    new_width = max(1, round(width * scale))
    new_height = max(1, round(height * scale))
    if (new_width, new_height) == (width, height):
        return np.array(rgb, dtype=np.float32, copy=True)
    planes = [rgb] if rgb.ndim == 2 else [rgb[:, :, c] for c in range(rgb.shape[2])]
    resized = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)).resize(
                (new_width, new_height), Image.Resampling.LANCZOS
            ),
            dtype=np.float32,
        )
        for plane in planes
    ]
    out = resized[0] if rgb.ndim == 2 else np.stack(resized, axis=2)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0))


# -- saving --------------------------------------------------------------------


def output_format(path: str | Path) -> str:
    """Pillow format name for an output path, from its extension."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise InputError(f"unknown output file type ({shown}); use one of {_SUPPORTED_OUTPUTS}", path)
    return fmt


def sidecar_path(path: str | Path) -> Path:
    """Where the recipe goes when the image format cannot hold it: ``<name>.<ext>.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check that a result could be saved at ``path``; call before a run starts.

    Raises ``InputError`` for an unknown extension, a folder, a missing or
    unwritable parent folder, and ``OutputExistsError`` for an existing file
    unless ``overwrite``.
    """
    path = Path(path).expanduser()
    output_format(path)
    if path.is_dir():
        raise InputError("is a folder; give a file name such as result.png", path)
    parent = path.parent
    if not parent.exists():
        raise InputError(f"the folder {parent} does not exist", path)
    if not parent.is_dir():
        raise InputError(f"{parent} is not a folder", path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError("already exists; pass --overwrite to replace it", path)
    # os.access is unreliable for folders on Windows and network shares; creating a file is the real test.
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=TEMP_PREFIX):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to the folder {parent}: {exc.strerror or exc}", path) from None
    return path


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
    fmt = output_format(path)
    pixels = _validated_pixels(image)
    height, width = pixels.shape[:2]
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (height, width):
            raise ValueError(f"alpha has shape {alpha.shape}, the image is {height} x {width}")
        alpha = np.clip(np.nan_to_num(alpha.astype(np.float32), nan=1.0), 0.0, 1.0)
    if bit_depth not in (8, 16):
        raise InputError(f"bit depth must be 8 or 16, got {bit_depth!r}", path)
    if bit_depth == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise InputError("16-bit output needs a .png, .tif or .tiff file", path)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"quality must be a whole number from 1 to 100, got {quality!r}", path)
    if fmt == "WEBP" and max(width, height) > _WEBP_MAX_SIDE:
        raise InputError(
            f"WebP images can be at most {_WEBP_MAX_SIDE} pixels on a side; use PNG or TIFF", path
        )
    if fmt == "JPEG" and max(width, height) > _JPEG_MAX_SIDE:
        raise InputError(
            f"JPEG images can be at most {_JPEG_MAX_SIDE} pixels on a side; use PNG or TIFF", path
        )
    if fmt == "JPEG" and alpha is not None:
        log.warning("%s: JPEG cannot store transparency; the alpha channel is dropped", path)
        alpha = None

    recipe_json = None if recipe is None else _recipe_json(recipe)
    embedded, sidecar_text = _plan_recipe(fmt, recipe_json)
    sidecar = sidecar_path(path) if sidecar_text is not None else None
    if sidecar is not None and (sidecar.exists() or sidecar.is_symlink()) and not overwrite:
        raise OutputExistsError("already exists; pass --overwrite to replace it", sidecar)

    if not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and 0 <= dpi <= 100_000):
        raise InputError(f"dpi must be a number from 0 to 100000, got {dpi!r}", path)
    writer = _writer(fmt, bit_depth, pixels, alpha, embedded, quality, float(dpi))
    _atomic_write(path, writer, overwrite=overwrite)
    if sidecar is not None and sidecar_text is not None:
        payload = sidecar_text.encode("utf-8")
        try:
            _atomic_write(sidecar, lambda fp: fp.write(payload), overwrite=overwrite)
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
        return json.dumps(dict(recipe), default=str, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"recipe is not JSON-serialisable: {exc}") from exc


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
        f'  <rdf:Description rdf:about="" xmlns:painterly="{_XMP_NAMESPACE}">\n'
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
            options["xmp"] = _xmp_packet(recipe_json)
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


@functools.cache
def _default_file_mode() -> int:
    """rw for everyone minus the umask, as a plain open() would give (temp files start at 0600)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, overwrite: bool) -> None:
    """Write through a temporary file in the same folder, then move it onto ``path``.

    On any failure the temporary file is removed and whatever was at ``path`` is untouched;
    encoder and disk errors become one-line ``InputError``s.
    """
    try:
        tmp = tempfile.NamedTemporaryFile(
            delete=False, dir=path.parent, prefix=TEMP_PREFIX, suffix=path.suffix
        )
    except OSError as exc:
        raise InputError(f"cannot write to the folder {path.parent}: {exc.strerror or exc}", path) from None
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        if os.name != "nt":
            # Temporary files start private (0600); the result should get the permissions a plain save would.
            mode = path.stat().st_mode & 0o7777 if overwrite and path.exists() else _default_file_mode()
            os.chmod(tmp_path, mode)
        _publish(tmp_path, path, overwrite=overwrite)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, InputError) or not isinstance(exc, Exception) or isinstance(exc, MemoryError):
            raise
        log.debug("writing %s failed", path, exc_info=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise InputError(f"could not save the file: {reason}", path) from None
    _fsync_folder(path.parent)


def _publish(tmp_path: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp_path, path)
        return
    try:
        # link() refuses an existing name atomically, unlike replace().
        os.link(tmp_path, path)
    except FileExistsError:
        raise OutputExistsError("already exists; pass --overwrite to replace it", path) from None
    except OSError:
        # No hard links here (FAT, some network shares): check, then rename.
        if path.exists() or path.is_symlink():
            raise OutputExistsError("already exists; pass --overwrite to replace it", path) from None
        os.replace(tmp_path, path)
        return
    tmp_path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading recipes back ----------------------------------------------------------


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
            tag = tif.pages[0].tags.get(_TIFF_DESCRIPTION_TAG)
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
    for element in root.iter(f"{{{_XMP_NAMESPACE}}}recipe"):
        if element.text:
            return element.text
    return None
