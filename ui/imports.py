"""Turning what the user drops or pastes into validated image files.

Every job input must be a file (the engine reads paths, and a recipe names
them), so raw image data from a browser or the clipboard, and files in a
browser's temporary folder (which it deletes after the drop), are validated
with the engine's loader and written to a PNG in the app's cache folder (or, when
that folder cannot be written, in a temporary folder of this session).

A path from a drop, the clipboard or a dialog is never opened before it is known to
be a regular file: a FIFO would block the window forever, /dev/zero never ends. And
a file name is untrusted text: ``shown`` and ``plain_tooltip`` make it inert before
a label, a tooltip or the message bar displays it.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage, Qt

from engine.encode import save_image
from engine.errors import InputError
from engine.files import check_regular_file, safe_exists
from engine.imageio import LoadedImage, load_image, load_image_bytes
from engine.records import to_uint8
from engine.text import printable
from ui.qtutil import qimage_png_bytes, rgb_to_qimage, shrink

log = logging.getLogger(__name__)

# Long edge of the copy kept for display; the compare view scales it to the output size.
PREVIEW_EDGE = 4096
REMOTE_SCHEMES = {"http", "https", "ftp", "data"}
# Refused before anything is read; the engine's loader applies its own (pixel) limits after this.
IMAGE_FILE_LIMIT = 4 << 30
# The longest name (before .png) a kept copy gets: a file name's limit is 255 bytes.
MAX_COPY_STEM = 80
# A text drop is a few paths, one a line; a pasted novel is not looked through to the end.
MAX_TEXT_PATHS = 200


def shown(text: object) -> str:
    """Untrusted text (a file name, a recipe value) as a label may show it: one line, inert."""
    return printable(text)


def plain_tooltip(text: object) -> str:
    """A tooltip that Qt shows as the literal text even when it looks like HTML.

    Qt renders a tooltip as rich text when its first line looks like a tag: a file named
    ``<img src=…>.png`` would make the tooltip load that image (a FIFO hangs the window).
    """
    return Qt.convertFromPlainText(printable_lines(text), Qt.WhiteSpaceMode.WhiteSpaceNormal)


def printable_lines(text: object) -> str:
    """``printable`` for each line, keeping the line breaks of text we composed ourselves."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def check_input_file(path: Path) -> None:
    """Raise an ``InputError`` unless ``path`` is a regular file that may be read; reads nothing.

    The type is checked with ``stat`` before the file is opened at all, so a FIFO, a device or a
    socket is refused without any side effect of opening it.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if safe_exists(path):
            raise InputError("is a link to a file that does not exist", path) from None
        raise InputError("does not exist (moved or deleted?)", path) from None
    except (OSError, ValueError):
        info = None  # check_regular_file below gives the reason in words (too long a name, ...)
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a folder, not an image", path)
        if stat.S_ISFIFO(info.st_mode):
            raise InputError("is a pipe (FIFO), not an image file", path)
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise InputError("is a device, not an image file", path)
        raise InputError("is not a regular file", path)
    check_regular_file(path, limit=IMAGE_FILE_LIMIT, what="image file")


@dataclass(frozen=True)
class FileStamp:
    """Enough to notice that a file changed after it was validated."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return cls(stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class ImportedImage:
    """A validated input image: the file the job will read and a copy for display."""

    path: Path
    name: str  # what the user sees: the file name, or "Pasted image"
    width: int
    height: int
    preview: QImage = field(compare=False, repr=False)
    sha256: str = ""
    stamp: FileStamp | None = field(default=None, compare=False)

    @property
    def size_text(self) -> str:
        return f"{self.width} × {self.height} px"

    @classmethod
    def from_loaded(cls, loaded: LoadedImage, path: Path, name: str) -> ImportedImage:
        rgb = loaded.rgb
        height, width = rgb.shape[:2]
        step = max(1, max(width, height) // PREVIEW_EDGE)
        # Striding first keeps converting a 40-megapixel photo cheap; shrink() then smooths.
        preview = shrink(rgb_to_qimage(to_uint8(rgb[::step, ::step])), PREVIEW_EDGE)
        return cls(
            path=path,
            name=name,
            width=width,
            height=height,
            preview=preview,
            sha256=getattr(loaded, "sha256", ""),
            stamp=FileStamp.of(path),
        )


@dataclass
class ImportResult:
    images: list[ImportedImage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def error_text(error: Exception, name: str) -> str:
    """'name: problem' with the file's short name rather than its full path; one inert line."""
    message = str(error)
    path = getattr(error, "path", None)
    if path is not None:
        # InputError collapses white space and escapes control characters in its message.
        for prefix in (f"{path}: ", printable(" ".join(f"{path}:".split())) + " "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
                break
    if not isinstance(error, InputError):
        detail = message.splitlines()[0] if message else ""
        message = f"cannot be read ({type(error).__name__}{': ' + detail if detail else ''})"
    return f"{shown(name)}: {shown(message)}"


def default_temp_dirs() -> tuple[Path, ...]:
    return (Path(tempfile.gettempdir()),)


class ImageImporter:
    def __init__(
        self, cache_dir: Path, temp_dirs: Sequence[Path] | None = None, *, cache_usable: bool = True
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.temp_dirs = tuple(Path(d) for d in (default_temp_dirs() if temp_dirs is None else temp_dirs))
        # False when the cache folder cannot be written (a read-only home): copies go to a temporary
        # folder of this session instead, made when the first one is needed.
        self.cache_usable = cache_usable
        self._fallback: Path | None = None

    # -- single sources -------------------------------------------------------
    def from_path(self, path: str | Path) -> ImportedImage:
        """Validate a file; raises InputError naming the file."""
        path = Path(path)
        check_input_file(path)
        loaded = load_image(path)
        if self.is_temporary(path):
            # A browser's drag file vanishes once the drop is over; keep our own copy.
            copy = self._cache_copy(loaded, path.stem)
            return ImportedImage.from_loaded(loaded, copy, copy.name)
        return ImportedImage.from_loaded(loaded, path, path.name)

    def from_bytes(self, data: bytes, name: str, display_name: str | None = None) -> ImportedImage:
        loaded = load_image_bytes(data, name)
        target = self._cache_copy(loaded, Path(display_name or name).stem)
        # The copy is what the job, the recipe and History name: the pane shows that same name.
        return ImportedImage.from_loaded(loaded, target, target.name)

    def from_qimage(self, image: QImage, name: str = "Pasted image") -> ImportedImage:
        if image.isNull():
            raise InputError(f"{name}: the image data is empty")
        return self.from_bytes(qimage_png_bytes(image), "pasted.png", display_name=name)

    def revalidate(self, image: ImportedImage) -> ImportedImage:
        """Re-check a file before a run: reuse the earlier check unless the file changed."""
        stamp = FileStamp.of(image.path)
        if stamp is None:
            raise InputError("no longer exists (moved or deleted?)", image.path)
        if stamp == image.stamp:
            return image
        check_input_file(image.path)  # replaced by a FIFO or a folder since it was chosen?
        loaded = load_image(image.path)
        return ImportedImage.from_loaded(loaded, image.path, image.name)

    # -- drops and the clipboard ----------------------------------------------
    def from_mime(self, mime: QMimeData, what: str = "Dropped image") -> ImportResult:
        result = ImportResult()
        remote: list[QUrl] = []
        local_paths: list[Path] = []
        if mime.hasUrls():
            for url in mime.urls():
                if url.isLocalFile():
                    local_paths.append(_local_path(url))
                elif url.scheme() in REMOTE_SCHEMES:
                    remote.append(url)
        if not local_paths and mime.hasText():
            local_paths.extend(_paths_in_text(mime.text()))
        for path in local_paths:
            self._collect(result, path.name or str(path), lambda p=path: self.from_path(p))
        if local_paths:
            return result

        # Raw bytes keep the original encoding (and its colour profile); Qt's decoded image is the fallback.
        for fmt in mime.formats():
            if not fmt.startswith("image/"):
                continue
            data = bytes(mime.data(fmt).data())
            if not data:
                continue
            extension = fmt.split("/", 1)[1].split(";")[0].replace("jpeg", "jpg")
            attempt = ImportResult()
            self._collect(attempt, what, lambda d=data, e=extension: self.from_bytes(d, f"dropped.{e}", what))
            if attempt.images:
                return attempt
            result.errors.extend(attempt.errors)
        if mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QImage) and not image.isNull():
                attempt = ImportResult()
                self._collect(attempt, what, lambda: self.from_qimage(image, what))
                if attempt.images:
                    return attempt
                result.errors.extend(attempt.errors)
        if result.errors:
            return result
        if remote:
            result.errors.append(
                f"{remote[0].fileName() or remote[0].host()}: Painterly does not download images; "
                "save it to disk first, then drop the file"
            )
        else:
            result.errors.append(
                "Nothing usable was dropped: drop image files, or copy an image and paste it"
            )
        return result

    # -- helpers --------------------------------------------------------------
    def is_temporary(self, path: Path) -> bool:
        """A file straight in a temp folder or one level below (where browsers put drag files).

        Deeper folders (pytest's, build trees) hold files the user chose on purpose.
        """
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError, ValueError):
            return False
        for temp in self.temp_dirs:
            try:
                relative = resolved.relative_to(temp.resolve())
            except (ValueError, OSError):
                continue
            if len(relative.parts) <= 2:
                return True
        return False

    def _cache_copy(self, loaded: LoadedImage, stem: str = "image") -> Path:
        """A PNG copy named as the user knows the image ("Pasted image.png", "starry.png"), in a folder
        named by its content, so one name is shown, recorded and saved everywhere, and the same
        pixels under the same name are kept once."""
        name = f"{stem.strip()[:MAX_COPY_STEM] or 'image'}.png"
        if self.cache_usable:
            try:
                return self._copy_into(self.cache_dir / "imports" / loaded.sha256[:20], name, loaded)
            except (OSError, InputError) as error:
                # Read-only, full or gone since start-up: this session's temporary folder will do.
                log.warning("cannot keep imported images in %s (%s)", self.cache_dir, error)
                self.cache_usable = False
        try:
            if self._fallback is None:
                self._fallback = Path(tempfile.mkdtemp(prefix="painterly-imports-"))
                log.info("keeping imported images in %s for this session", self._fallback)
            return self._copy_into(self._fallback / loaded.sha256[:20], name, loaded)
        except (OSError, InputError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise InputError(
                f"cannot keep a copy of the image: no folder can be written to ({reason})"
            ) from None

    @staticmethod
    def _copy_into(folder: Path, name: str, loaded: LoadedImage) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.is_file():
            save_image(target, loaded.rgb, alpha=loaded.alpha, overwrite=True)
            log.info("kept a copy of imported image data as %s", target)
        return target

    @staticmethod
    def _collect(result: ImportResult, name: str, make: object) -> None:
        try:
            result.images.append(make())  # type: ignore[operator]
        except (InputError, OSError, MemoryError) as error:
            result.errors.append(error_text(error, name))
        except Exception as error:  # noqa: BLE001 - a broken file must become a message, never a crash
            log.exception("importing %s", name)
            result.errors.append(error_text(error, name))


def _local_path(url: QUrl) -> Path:
    """The file a file:// URL names, byte for byte.

    ``QUrl.toLocalFile`` decodes the name as UTF-8 and replaces what is not; a file manager
    percent-encodes the name's raw bytes, so decoding those keeps names that are not UTF-8
    (``bad%E9.png``) pointing at their file.
    """
    if os.name != "nt" and not url.host():
        encoded = bytes(url.path(QUrl.ComponentFormattingOption.FullyEncoded).encode("ascii", "replace"))
        raw = urllib.parse.unquote_to_bytes(encoded)
        if raw:
            return Path(os.fsdecode(raw))
    return Path(url.toLocalFile())


def _paths_in_text(text: str) -> Iterable[Path]:
    """Some file managers and terminals drop plain text: paths or file:// URLs, one a line."""
    for line in text.splitlines()[:MAX_TEXT_PATHS]:
        line = line.strip()
        if not line:
            continue
        candidate = _local_path(QUrl(line)) if line.startswith("file:") else Path(os.path.expanduser(line))
        if candidate.is_absolute() and safe_exists(candidate):
            yield candidate
