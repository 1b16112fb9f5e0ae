"""Reading images safely: pixels for the engine from a file, a paste or a drag.

Loading accepts only PNG, JPEG, WebP, TIFF and BMP, whatever the file is
called: Pillow's other plugins (EPS through Ghostscript, PDF, ...) are a
security and support burden a style-transfer app does not need.  Only regular
files are read, up to a size limit (engine.files).  Every problem a file can
have becomes one ``InputError`` line that names the file, and decoding adds
nothing to stderr: Python warnings raised while decoding (Pillow's, tifffile's,
numpy's) and the decoders' log messages go to this module's debug log, and
libtiff's own error messages are switched off (see ``_silence_libtiff``).
Pixels come back as float32 sRGB in [0, 1], upright (EXIF orientation
applied), with alpha split off when the image has transparency.

Saving lives in engine.encode, the recipe inside a file in engine.metadata.

Known limits: Pillow reduces 16-bit RGB PNGs to 8 bits on reading (16-bit
grayscale PNGs and 16-bit RGB TIFFs keep their precision).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import logging
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from engine.errors import InputError
from engine.files import describe_os_error, open_regular_file
from engine.text import printable

log = logging.getLogger(__name__)

# Image files are read whole (the hash and the decoder see the same bytes). Pillow opens at most
# Image.MAX_IMAGE_PIXELS (about 179 million) pixels; even stored uncompressed at 16-bit RGBA that
# is 1.4 GB, so 2 GiB refuses no image we could decode, while /dev/zero, a huge file renamed
# .png or a paste of gigabytes never fills memory.
IMAGE_FILE_LIMIT = 2 << 30
# How much of a decoder's own error message goes into ours.
_REASON_CHARS = 200
# Decoding time must grow with the pixels, not with how a file is cut up. Pillow walks PNG chunks
# and JPEG header segments in Python (some 3 microseconds each: 2 GiB of empty ones would take ten
# minutes), and libjpeg decodes each scan of a progressive JPEG over the whole image (a few
# thousand empty scans of a large image take an hour). Real files stay far below these limits:
# libpng writes IDAT chunks of 8 KiB (a million of them is 8 GiB of pixels), a JPEG header has
# dozens of segments, and encoders write about ten scans.
_MAX_PNG_CHUNKS = 1 << 20
_MAX_JPEG_SEGMENTS = 1 << 16
_MAX_JPEG_SCANS = 100

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
    """Read and validate an image file; any problem is an ``InputError``.

    Only a regular file of at most ``IMAGE_FILE_LIMIT`` bytes is read: a folder, a FIFO (which
    would block forever), a device (``/dev/zero`` never ends) or a name too long for the system
    is refused in one line by engine.files.
    """
    path = Path(path)
    with open_regular_file(path, limit=IMAGE_FILE_LIMIT, what="image") as stream:
        try:
            size = os.fstat(stream.fileno()).st_size
            # One read serves both the hash and the decoder, so they always see the same bytes.
            # The size it has now, plus one byte to notice a file still being written: asking
            # for the limit instead would make Python reserve that much memory for every read.
            data = stream.read(size + 1)
        except OSError as exc:
            raise InputError(f"cannot read the file: {describe_os_error(exc)}", path) from None
        except MemoryError:
            raise InputError("not enough memory to read the file", path) from None
    if len(data) > size:
        raise InputError("the file grew while it was read (is it still being written?)", path)
    return _decode(data, path, path)


def load_image_bytes(data: bytes, name: str = "pasted image") -> LoadedImage:
    """Like ``load_image`` for image data from the clipboard or a drag."""
    if len(data) > IMAGE_FILE_LIMIT:
        raise InputError(f"the image is too large ({len(data) >> 20:,} MiB; the limit is 2 GiB)", name)
    return _decode(bytes(data), name, None)


def _decode(data: bytes, where: str | Path, path: Path | None) -> LoadedImage:
    if not data:
        raise InputError("the file is empty", where)
    _silence_libtiff()
    unsupported = _sniff_unsupported(data)
    if unsupported:
        raise InputError(
            f"not an image Painterly can read: {unsupported} are not supported; use {_SUPPORTED_INPUTS}",
            where,
        )
    too_many = _too_many_parts(data)
    if too_many:
        raise InputError(f"the file is not decoded: {too_many}", where)
    try:
        with _quiet_decoding(where), Image.open(io.BytesIO(data), formats=ALLOWED_INPUT_FORMATS) as img:
            _check_pixel_count(img.size, where)
            if img.size[0] < 1 or img.size[1] < 1:
                width, height = img.size
                raise InputError(f"the image has no pixels (its size is {width} x {height})", where)
            fmt = str(img.format)
            mode = img.mode
            # is_animated, not n_frames: counting a TIFF's frames walks every directory in the file,
            # and a hostile file can chain millions of them.
            if getattr(img, "is_animated", False):
                log.info("%s: has several frames; using the first", _shown(where))
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
        log.debug("decoding %s failed", _shown(where), exc_info=True)
        reason = str(exc) or type(exc).__name__
        if len(reason) > _REASON_CHARS:
            reason = reason[:_REASON_CHARS] + "..."
        raise InputError(f"the image data is damaged or truncated ({reason})", where) from None
    return LoadedImage(
        path=path,
        rgb=rgb,
        alpha=alpha,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        mode=mode,
    )


def _shown(where: str | Path) -> str:
    """A file name for a log line: inert, since a name may carry escape sequences or newlines."""
    return printable(where)


# Loggers of the libraries that decode for us. Pillow logs some damage at ERROR level ("More
# samples per pixel than can be decoded"), tifffile logs what it skips; our InputError already
# says the file is damaged, so these would only be extra lines on stderr.
_DECODER_LOGGERS = (
    "PIL.Image",
    "PIL.ImageFile",
    "PIL.BmpImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
    "PIL.TiffImagePlugin",
    "PIL.TiffTags",
    "PIL.WebPImagePlugin",
    "tifffile",
)


@contextlib.contextmanager
def _quiet_decoding(where: str | Path) -> Iterator[None]:
    """Decode without adding lines to stderr; Pillow's size warning becomes an error.

    Python warnings raised meanwhile (Pillow's "Corrupt EXIF data", tifffile's, numpy's) are
    recorded, and the decoders' log records above DEBUG are caught by a filter on each of their
    loggers (a logger's filters do not apply to its children's records, hence the list); both go
    to this module's debug log. Warning filters and logger filters are process-wide: another
    thread decoding or warning meanwhile is treated the same, which is harmless.
    _check_pixel_count enforces the size limit even if the warning were let through.
    """
    names = set(_DECODER_LOGGERS) | {
        name for name in logging.root.manager.loggerDict if name.startswith(("PIL.", "tifffile"))
    }
    loggers = [logging.getLogger(name) for name in sorted(names)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for logger in loggers:
            logger.addFilter(_to_debug)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(_to_debug)
            for warning in caught:
                kind = warning.category.__name__
                log.debug("%s: %s while decoding: %s", _shown(where), kind, printable(warning.message))


def _to_debug(record: logging.LogRecord) -> bool:
    """A logging filter that passes a record above DEBUG on as this module's debug message.

    Lowering the record's level in place would not do: a handler with no level of its own (as
    logging.basicConfig makes) would still print it.
    """
    if record.levelno <= logging.DEBUG:
        return True
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record must not break decoding
        message = str(record.msg)
    log.debug("%s: %s", record.name, printable(message))
    return False


@functools.cache
def _silence_libtiff() -> None:
    """Stop libtiff writing its error messages to stderr.

    Pillow decodes compressed TIFFs with libtiff. It switches libtiff's warning handler off but
    leaves the error handler, so a damaged or unusual TIFF (a tag of an unknown type, a bad
    directory) prints lines such as "TIFFFetchNormalTag: ..." straight to file descriptor 2,
    past Python and logging. Pillow reports the failure itself (an exception, which becomes our
    InputError), so the text adds nothing. Pillow offers no way to set a handler, so this calls
    libtiff's TIFFSetErrorHandler(NULL), the documented way to suppress the messages, in the
    copy of libtiff already loaded into this process (Pillow's); it loads no library. Where
    none is found (Windows wheels link libtiff into Pillow), nothing changes.
    """
    for library in _loaded_libtiffs():
        try:
            set_handler = ctypes.CDLL(library).TIFFSetErrorHandler
            set_handler.restype = ctypes.c_void_p
            set_handler.argtypes = [ctypes.c_void_p]
            set_handler(None)
            log.debug("libtiff error messages switched off in %s", library)
        except (OSError, AttributeError):
            log.debug("cannot switch off libtiff error messages in %s", library, exc_info=True)


def _loaded_libtiffs() -> list[str]:
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "libtiff" in line}
        except OSError:
            return []
        return sorted(p for p in paths if p.startswith("/") and "libtiff" in Path(p).name and ".so" in p)
    if sys.platform == "darwin":
        # Pillow's wheels carry their libraries next to the package.
        return sorted(str(p) for p in Path(Image.__file__).parent.glob(".dylibs/libtiff*.dylib"))
    return []


def _too_many_parts(data: bytes) -> str | None:
    """Why a PNG or JPEG is cut into so many parts that decoding would take minutes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        position, chunks = 8, 0
        while position + 8 <= len(data) and data[position + 4 : position + 8] != b"IEND":
            chunks += 1
            if chunks > _MAX_PNG_CHUNKS:
                return f"it has more than {_MAX_PNG_CHUNKS:,} PNG chunks"
            position += 12 + struct.unpack_from(">I", data, position)[0]
    elif data.startswith(b"\xff\xd8"):
        # An 0xFF 0xDA pair can only be a start-of-scan marker: in the compressed data every 0xFF
        # is followed by 0x00 or a restart marker.
        scans = data.count(b"\xff\xda")
        if scans > _MAX_JPEG_SCANS:
            return f"it has {scans:,} JPEG scans (photos have about ten; at most {_MAX_JPEG_SCANS} are read)"
        position, segments = 2, 0
        while position + 4 <= len(data) and data[position] == 0xFF:
            segments += 1
            if segments > _MAX_JPEG_SEGMENTS:
                return f"its JPEG header has more than {_MAX_JPEG_SEGMENTS:,} parts"
            marker = data[position + 1]
            if marker in (0xDA, 0xD9):
                break  # the first scan: the header is over
            if marker == 0xFF:  # a fill byte
                position += 1
            elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
                position += 2
            else:
                position += 2 + struct.unpack_from(">H", data, position + 2)[0]
    return None


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
        # One line for the user; the traceback only in the debug log.
        log.warning("%s: ignoring unreadable EXIF orientation", _shown(where))
        log.debug("reading the EXIF orientation of %s failed", _shown(where), exc_info=True)
        return img


def _high_bit_gray(img: Image.Image, fmt: str, where: str | Path) -> np.ndarray:
    mode = img.mode
    if mode == "F":
        gray = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    elif mode == "I":
        # Pillow widens 16-bit PNGs (and some TIFFs) to 32-bit "I"; the file says how many bits are real.
        bits, signed = _tiff_sample_format(img) if fmt == "TIFF" else (16, False)
        # At least 1: a file claiming 1-bit signed samples would otherwise divide by zero.
        full_scale = max(2 ** (bits - 1 if signed else bits) - 1, 1)
        gray = np.asarray(img, dtype=np.float64) / float(full_scale)
    else:
        gray = np.asarray(img).astype(np.float32) / np.float32(65535.0)
    if img.info.get("icc_profile") and not _is_srgb(img.info["icc_profile"], where):
        log.warning("%s: colour profile not applied to a high-bit-depth grayscale image", _shown(where))
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
            log.warning(
                "%s: ignoring a colour profile that cannot be applied (%s)", _shown(where), printable(exc)
            )
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
        log.warning("%s: ignoring an unreadable colour profile", _shown(where))
        return True
    return "srgb" in description.lower()


def _deep_tiff_pixels(
    img: Image.Image, data: bytes, where: str | Path
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Full-precision pixels of a 16-bit RGB(A) TIFF, which Pillow reduces to 8 bits.

    None means "let Pillow do it": anything unusual (other layouts, a colour profile to apply, a
    compression other than none or Deflate, damage) takes the 8-bit path instead of failing.
    """
    try:
        tags = getattr(img, "tag_v2", None)
        if tags is None:
            return None
        bits = tags.get(258)
        bits = tuple(bits) if isinstance(bits, tuple) else (bits,)
        samples = tags.get(277, 1)
        if tags.get(262) != 2 or samples not in (3, 4) or any(b != 16 for b in bits):
            return None
    except Exception:  # odd tag values (a rational where a number belongs, ...): not ours
        return None
    icc = img.info.get("icc_profile")
    if icc and not _is_srgb(icc, where):
        return None
    try:
        import tifffile

        # tifffile reads the directory (tags, strip offsets); the strips are decoded below.
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            layout = _StripLayout.of(page, tif.byteorder, img.size, samples)
            if layout is None:
                return None
            # Read here because Pillow applies and then forgets a TIFF's orientation when it loads.
            orientation_tag = page.tags.get(_TIFF_ORIENTATION_TAG)
            orientation = orientation_tag.value if orientation_tag is not None else 1
            extra_samples = tuple(int(v) for v in page.extrasamples)
        array = layout.decode(data)
    except Exception:  # damage tifffile or the strips show: Pillow decides
        log.debug("%s: not read at 16 bits; using Pillow's 8-bit reading", _shown(where), exc_info=True)
        return None
    if array is None:
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


@dataclass(frozen=True)
class _StripLayout:
    """Where the strips of a plain 16-bit interleaved TIFF are, and how to decode them.

    Decoded here rather than by tifffile, whose Deflate decoding (without the optional
    imagecodecs) inflates a strip without any limit: a small hostile file could expand to
    gigabytes. Here each strip inflates to at most the bytes its rows need.
    """

    width: int
    height: int
    samples: int
    byteorder: str
    rows_per_strip: int
    deflate: bool
    predictor: bool
    offsets: tuple[int, ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, page: Any, byteorder: str, size: tuple[int, int], samples: int) -> _StripLayout | None:
        """The layout of a page Painterly (or another plain writer) made, else None."""
        compression = int(page.compression)
        if (
            page.is_tiled
            or int(page.planarconfig) != 1  # colour planes stored apart
            or (int(page.imagewidth), int(page.imagelength)) != size  # not what Pillow sees
            or int(page.samplesperpixel) != samples
            or int(page.sampleformat) != 1  # unsigned integers
            or int(page.fillorder) != 1
            or compression not in (1, 8, 32946)  # none, Deflate (Adobe), Deflate (old code)
            or int(page.predictor) not in (1, 2)  # none, horizontal differencing
        ):
            return None
        width, height = size
        rows = min(max(int(page.rowsperstrip), 1), height)
        offsets = tuple(int(o) for o in page.dataoffsets)
        counts = tuple(int(c) for c in page.databytecounts)
        if len(offsets) != -(-height // rows) or len(counts) != len(offsets):
            return None
        predictor = int(page.predictor) == 2
        return cls(width, height, samples, byteorder, rows, compression != 1, predictor, offsets, counts)

    def decode(self, data: bytes) -> np.ndarray | None:
        """H x W x samples uint16, or None where a strip is missing or short."""
        row_bytes = self.width * self.samples * 2
        out = bytearray(self.height * row_bytes)
        view = memoryview(data)
        for index, (offset, count) in enumerate(zip(self.offsets, self.counts, strict=True)):
            first = index * self.rows_per_strip
            needed = (min(first + self.rows_per_strip, self.height) - first) * row_bytes
            if offset < 0 or count < 0 or offset + count > len(data):
                return None
            stored = view[offset : offset + count]
            if self.deflate:
                strip = zlib.decompressobj().decompress(stored, needed)  # never more than needed
            else:
                strip = bytes(stored[:needed])
            if len(strip) < needed:
                return None
            out[first * row_bytes : first * row_bytes + needed] = strip
        dtype = np.dtype(np.uint16).newbyteorder(self.byteorder)
        array = np.frombuffer(out, dtype=dtype).reshape(self.height, self.width, self.samples)
        array = array.astype(np.uint16)  # native byte order
        if self.predictor:
            # Each sample was stored as the difference from its left neighbour, modulo 2**16.
            array = np.cumsum(array, axis=1, dtype=np.uint16)
        return array


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

