"""Files dropped anywhere in the window go where a person means them to.

On the Photo pane the first image is the photo and the rest are styles; on the Styles pane every
image is a style; on the canvas or anywhere else in the window the first image is the photo while
there is none, and every other image is a style. A dropped image that carries a Painterly recipe
is used as an image like any other, and the message offers to restore its recipe instead. A
dropped session file (``.painterly``) opens that session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from engine.errors import InputError
from ui.image_pane import ContentPane
from ui.imports import ImageImporter, ImportedImage, check_input_file, shown
from ui.message_bar import Level
from ui.style_list import StyleList
from ui.thumbs import mime_may_hold_image

log = logging.getLogger(__name__)

# A saved session (ui.session.archive.SUFFIX; written out here so a drop needs nothing of the session
# code until a session file is actually dropped).
SESSION_SUFFIX = ".painterly"

# show_message(text, level, action)
Say = Callable[[str, Level, "tuple[str, Callable[[], None]] | None"], None]


class Target(Enum):
    PHOTO = "photo"  # the Photo pane
    STYLES = "styles"  # the Styles pane
    CANVAS = "canvas"  # the picture, or anywhere else in the window


def split_drop(
    images: Sequence[ImportedImage], target: Target, has_photo: bool
) -> tuple[ImportedImage | None, list[ImportedImage]]:
    """(the new photo or None, the new styles) for images dropped on ``target``."""
    if not images:
        return None, []
    if target is Target.PHOTO or (target is Target.CANVAS and not has_photo):
        return images[0], list(images[1:])
    return None, list(images)


def local_files(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def has_recipe(path: Path) -> bool:
    """Whether a file carries a Painterly recipe (read from its headers, never its pixels)."""
    from engine.metadata import read_recipe

    try:
        check_input_file(path)  # never open a FIFO or a device
        read_recipe(path)
    except (InputError, OSError):
        return False
    except Exception:  # noqa: BLE001 - a stranger's file: anything wrong means "no recipe here"
        log.info("reading a recipe from %s failed", shown(path), exc_info=True)
        return False
    return True


class DropRouter(QObject):
    """Takes drops on the canvas and the window (the panes take their own) and places their images."""

    def __init__(
        self,
        importer: ImageImporter,
        content_pane: ContentPane,
        style_list: StyleList,
        say: Say,
        open_recipe: Callable[[Path], None],
        parent: QObject | None = None,
        open_session: Callable[[Path], object] | None = None,
    ) -> None:
        super().__init__(parent)
        self.importer = importer
        self.content_pane = content_pane
        self.style_list = style_list
        self.say = say
        self.open_recipe = open_recipe
        self.open_session = open_session
        # The Photo pane keeps the first image; the others it was given are styles.
        content_pane.stylesDropped.connect(style_list.add_images)

    def install(self, window: QWidget) -> None:
        """Drops on the window's background (and on every part that takes none itself) come here."""
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and isinstance(event, QDragEnterEvent):
            if mime_may_hold_image(event.mimeData()):
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop and isinstance(event, QDropEvent):
            event.acceptProposedAction()
            self.drop(event.mimeData(), Target.CANVAS)
            return True
        return False

    def drop(self, mime: QMimeData, target: Target = Target.CANVAS) -> None:
        """Place what ``mime`` holds; say what went where when it is not the pane it was dropped on."""
        files = local_files(mime)
        sessions = [path for path in files if path.suffix.lower() == SESSION_SUFFIX]
        if sessions and self.open_session is not None:
            self.open_session(sessions[0])  # it says itself what it opened, or why not
            return
        result = self.importer.from_mime(mime, "Dropped image")
        photo, styles = split_drop(result.images, target, self.content_pane.image is not None)
        if photo is not None:
            self.content_pane.set_image(photo)
        if styles:
            self.style_list.add_images(styles)
        if result.errors:
            self.say("\n".join(result.errors), Level.ERROR, None)
            return
        recipe = next((path for path in files if has_recipe(path)), None) if len(files) == 1 else None
        placed = self._placed_text(photo, styles)
        if recipe is not None:
            self.say(
                f"{placed} {shown(recipe.name)} was made by Painterly: Restore recipe brings back its "
                "photo, styles and settings instead.",
                Level.INFO,
                ("Restore recipe", lambda: self.open_recipe(recipe)),
            )
        elif target is Target.CANVAS and placed and (styles or len(result.images) > 1):
            self.say(placed, Level.INFO, None)

    @staticmethod
    def _placed_text(photo: ImportedImage | None, styles: list[ImportedImage]) -> str:
        parts = []
        if photo is not None:
            parts.append(f"{shown(photo.name)} is the photo")
        if styles:
            names = ", ".join(shown(image.name) for image in styles)
            parts.append(f"{names} {'is a style' if len(styles) == 1 else 'are styles'}")
        if not parts:
            return ""
        return "; ".join(parts) + "."
