"""What the photo pane and the style list share: an image thumbnail, and taking images from a drop or
the clipboard."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, SignalInstance
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget


class ImageTarget(Protocol):
    """A pane that takes images: the photo pane or the style list."""

    problems: SignalInstance  # list[str], one line per file

    def import_mime(self, mime: QMimeData, what: str = ...) -> None: ...


def mime_may_hold_image(mime: QMimeData) -> bool:
    return bool(
        mime.hasUrls()
        or mime.hasImage()
        or mime.hasText()
        or any(f.startswith("image/") for f in mime.formats())
    )


def paste_into(target: ImageTarget) -> None:
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
