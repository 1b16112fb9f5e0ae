"""Reading images safely: pixels for the engine from a file, a paste or a drag.

Loading accepts only PNG, JPEG, WebP, TIFF and BMP, whatever the file is
called: Pillow's other plugins (EPS through Ghostscript, PDF, ...) are a
security and support burden a style-transfer app does not need.  Only regular
files are read, up to a size limit (engine.files).  Every problem a file can
have becomes one ``InputError`` line that names the file.  Pixels come back as
float32 sRGB in [0, 1], upright (EXIF orientation applied), with alpha split
off when the image has transparency.

Saving lives in engine.encode, the recipe inside a file in engine.metadata.

Known limits: Pillow reduces 16-bit RGB PNGs to 8 bits on reading (16-bit
grayscale PNGs and 16-bit RGB TIFFs keep their precision).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from engine.errors import InputError

log = logging.getLogger(__name__)

ALLOWED_INPUT_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_SUPPORTED_INPUTS = "PNG, JPEG, WebP, TIFF or BMP"
_TIFF_ORIENTATION_TAG = 274

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

