"""The photo pane: drop, paste or open the content image; shows it and its size."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from ui.imports import ImageImporter, ImportedImage, ImportResult, plain_tooltip, shown
from ui.qtutil import ElidedLabel, guarded, tool_button

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from ui.style_list import StyleList


def mime_may_hold_image(mime: QMimeData) -> bool:
    return bool(
        mime.hasUrls()
        or mime.hasImage()
        or mime.hasText()
        or any(f.startswith("image/") for f in mime.formats())
    )


def paste_into(target: ContentPane | StyleList) -> None:
    """Import the clipboard's image (data or files) into a pane, or say why there is none."""
    mime = QGuiApplication.clipboard().mimeData()
    if mime is None or not mime_may_hold_image(mime):
        target.problems.emit(["The clipboard holds no image: copy an image or an image file first"])
        return
    target.import_mime(mime, "Pasted image")


class ImageThumb(QWidget):
    """Paints an image scaled to fit, sharp at any device pixel ratio; a drop hint when empty."""

    def __init__(self, hint: str, parent: QWidget | None = None, minimum: QSize | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._hint = hint
        self._hover = False
        self._cache: QPixmap | None = None
        self._cache_key: tuple[int, int, float] | None = None
        self.setMinimumSize(minimum or QSize(120, 90))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None else QImage()
        self._cache = None
        self.update()

    def image(self) -> QImage:
        return self._image

    def set_hover(self, hover: bool) -> None:
        self._hover = hover
        self.update()

    def _target(self) -> QRectF:
        bounds = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        if self._image.isNull():
            return bounds
        size = QSize(self._image.size())
        size.scale(bounds.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
        x = bounds.x() + (bounds.width() - size.width()) / 2
        y = bounds.y() + (bounds.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def _pixmap(self, target: QRectF) -> QPixmap:
        ratio = self.devicePixelRatioF()
        key = (round(target.width()), round(target.height()), ratio)
        if self._cache is None or self._cache_key != key:
            scaled = self._image.scaled(
                max(1, round(target.width() * ratio)),
                max(1, round(target.height() * ratio)),
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self._cache = QPixmap.fromImage(scaled)
            self._cache.setDevicePixelRatio(ratio)
            self._cache_key = key
        return self._cache

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        if self._image.isNull():
            frame = QRectF(self.rect()).adjusted(2, 2, -2, -2)
            accent = palette.highlight().color()
            border = accent if self._hover else palette.mid().color()
            fill = QColor(accent) if self._hover else palette.base().color()
            if self._hover:
                fill.setAlpha(40)
            painter.setBrush(fill)
            pen = QPen(border, 1.5, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRoundedRect(frame, 8, 8)
            painter.setPen(palette.placeholderText().color())
            painter.drawText(
                frame.adjusted(10, 10, -10, -10),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._hint,
            )
        else:
            target = self._target()
            painter.drawPixmap(target.topLeft(), self._pixmap(target))
            if self._hover:
                pen = QPen(palette.highlight().color(), 2)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 6, 6)
        painter.end()


class ContentPane(QFrame):
    """The photo to be painted."""

    imageChanged = Signal(object)  # ImportedImage | None  # noqa: N815 - Qt naming
    problems = Signal(list)  # list[str], one line per file
    openRequested = Signal()  # noqa: N815

    def __init__(self, importer: ImageImporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContentPane")
        self.importer = importer
        self._image: ImportedImage | None = None
        self.setAcceptDrops(True)

        self.thumb = ImageThumb(
            "Drop a photo here\n\nor Open… (Ctrl+O) or paste (Ctrl+V)", minimum=QSize(200, 150)
        )
        self.thumb.setToolTip(
            "The photo to paint: its shapes and composition are kept while the style's colours and "
            "brush strokes are painted over it. Drop a file or image from a browser here."
        )
        self.name_label = ElidedLabel("")
        # A file name is shown as it is: never as HTML (a name like "<img src=…>.png" would load that).
        self.name_label.setTextFormat(Qt.TextFormat.PlainText)
        self.name_label.setObjectName("StyleName")
        self.name_label.setToolTip("The photo's file")
        self.caption = QLabel("No photo yet")
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setObjectName("Caption")
        self.caption.setToolTip("Size of the photo in pixels")

        self.open_button = self._button("open", "Open…", "Choose the photo to paint from a file (Ctrl+O)")
        self.paste_button = self._button(
            "paste", "Paste", "Use the image on the clipboard as the photo (Ctrl+V)"
        )
        self.clear_button = self._button("remove", "Remove", "Remove the photo")
        self.open_button.clicked.connect(self.openRequested)
        self.paste_button.clicked.connect(self.paste)
        self.clear_button.clicked.connect(self.clear)

        details = QHBoxLayout()
        details.setSpacing(8)
        details.addWidget(self.name_label, 1)
        details.addWidget(self.caption)
        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.paste_button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.thumb, 1)
        layout.addLayout(details)
        layout.addLayout(buttons)
        self._update_caption()

    def _button(self, icon_name: str, text: str, tip: str) -> QToolButton:
        return tool_button(icon_name, text, tip)

    # -- state ----------------------------------------------------------------
    @property
    def image(self) -> ImportedImage | None:
        return self._image

    def set_image(self, image: ImportedImage | None) -> None:
        self._image = image
        self.thumb.set_image(image.preview if image is not None else None)
        self._update_caption()
        self.imageChanged.emit(image)

    def clear(self) -> None:
        self.set_image(None)

    def _update_caption(self) -> None:
        image = self._image
        self.clear_button.setEnabled(image is not None)
        self.name_label.setVisible(image is not None)
        if image is None:
            self.caption.setText("No photo yet")
        else:
            self.name_label.set_full_text(shown(image.name))
            self.name_label.setToolTip(plain_tooltip(image.path))
            self.caption.setText(image.size_text)

    # -- input ----------------------------------------------------------------
    def accept_result(self, result: ImportResult) -> None:
        problems = list(result.errors)
        if result.images:
            self.set_image(result.images[0])
            if len(result.images) > 1:
                problems.append(
                    f"Only one photo can be painted; using {result.images[0].name}. "
                    "Drop the others on Styles to use them as styles."
                )
        if problems:
            self.problems.emit(problems)

    def import_mime(self, mime: QMimeData, what: str = "Dropped image") -> None:
        self.accept_result(self.importer.from_mime(mime, what))

    @guarded
    def paste(self) -> None:
        paste_into(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if mime_may_hold_image(event.mimeData()):
            event.acceptProposedAction()
            self.thumb.set_hover(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self.thumb.set_hover(False)

    @guarded
    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.thumb.set_hover(False)
        event.acceptProposedAction()
        self.import_mime(event.mimeData())
