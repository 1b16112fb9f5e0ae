"""Turning what the user drops or pastes into validated image files.

Every job input must be a file (the engine reads paths, and a recipe names
them), so raw image data from a browser or the clipboard, and files in a
browser's temporary folder (which it deletes after the drop), are validated
with the engine's loader and written to a PNG in the app's cache folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage

from engine.encode import save_image
from engine.errors import InputError
from engine.imageio import LoadedImage, load_image, load_image_bytes
from engine.records import to_uint8
from ui.qtutil import qimage_png_bytes, rgb_to_qimage, shrink

log = logging.getLogger(__name__)

# Long edge of the copy kept for display; the compare view scales it to the output size.
PREVIEW_EDGE = 4096
REMOTE_SCHEMES = {"http", "https", "ftp", "data"}


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
    """'name: problem' with the file's short name rather than its full path."""
    message = str(error)
    path = getattr(error, "path", None)
    if path is not None:
        prefix = f"{path}: "
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if not isinstance(error, InputError):
        message = f"cannot be read ({type(error).__name__}: {message})"
    return f"{name}: {message}"


def default_temp_dirs() -> tuple[Path, ...]:
    return (Path(tempfile.gettempdir()),)


class ImageImporter:
    def __init__(self, cache_dir: Path, temp_dirs: Sequence[Path] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.temp_dirs = tuple(Path(d) for d in (default_temp_dirs() if temp_dirs is None else temp_dirs))

    # -- single sources -------------------------------------------------------
    def from_path(self, path: str | Path) -> ImportedImage:
        """Validate a file; raises InputError naming the file."""
        path = Path(path)
        if path.is_dir():
            raise InputError("is a folder, not an image", path)
        if not path.exists():
            raise InputError("does not exist (moved or deleted?)", path)
        if self.is_temporary(path):
            # A browser's drag file vanishes once the drop is over; keep our own copy.
            return self.from_bytes(path.read_bytes(), path.name, display_name=path.name)
        loaded = load_image(path)
        return ImportedImage.from_loaded(loaded, path, path.name)

    def from_bytes(self, data: bytes, name: str, display_name: str | None = None) -> ImportedImage:
        loaded = load_image_bytes(data, name)
        target = self._cache_copy(loaded)
        return ImportedImage.from_loaded(loaded, target, display_name or name)

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
                    local_paths.append(Path(url.toLocalFile()))
                elif url.scheme() in REMOTE_SCHEMES:
                    remote.append(url)
        if not local_paths and mime.hasText():
            local_paths.extend(_paths_in_text(mime.text()))
        for path in local_paths:
            self._collect(result, path.name, lambda p=path: self.from_path(p))
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
        except OSError:
            return False
        for temp in self.temp_dirs:
            try:
                relative = resolved.relative_to(temp.resolve())
            except (ValueError, OSError):
                continue
            if len(relative.parts) <= 2:
                return True
        return False

    def _cache_copy(self, loaded: LoadedImage) -> Path:
        folder = self.cache_dir / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{loaded.sha256[:20]}.png"
        if not target.exists():
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


def _paths_in_text(text: str) -> Iterable[Path]:
    """Some file managers and terminals drop plain text: paths or file:// URLs, one a line."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("file:"):
            line = QUrl(line).toLocalFile()
        candidate = Path(os.path.expanduser(line))
        if candidate.is_absolute() and candidate.exists():
            yield candidate
