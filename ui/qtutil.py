"""Small Qt helpers shared by the window's widgets."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QEvent, QIODevice, QObject, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QSizePolicy,
    QToolButton,
    QWidget,
)

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICONS = RESOURCES / "icons"

F = TypeVar("F", bound=Callable[..., Any])


def icon(name: str) -> QIcon:
    """An icon from resources/icons; an empty icon when the file is missing (e.g. a bare install)."""
    path = ICONS / f"{name}.svg"
    if not path.exists():
        log.debug("icon %s not found", path)
        return QIcon()
    return QIcon(str(path))


def tool_button(icon_name: str, text: str, tip: str) -> QToolButton:
    """A flat tool button with an icon, optional text beside it, and a tooltip."""
    button = QToolButton()
    button.setIcon(icon(icon_name))
    if text:
        button.setText(text)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setAutoRaise(True)
    button.setToolTip(tip)
    return button


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 H x W x 3 (or float [0, 1]) to a QImage that owns its pixels.

    The copy detaches the QImage from the numpy buffer, so it can cross threads
    and outlive the array.
    """
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb[..., :3])
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)
    return image.copy()


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A QImage as uint8 H x W x 3 (alpha dropped)."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = converted.width(), converted.height()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.sizeInBytes())
    rows = buffer.reshape(height, converted.bytesPerLine())
    return rows[:, : width * 3].reshape(height, width, 3).copy()


def qimage_png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def thumbnail(image: QImage, box: QSize, device_pixel_ratio: float) -> QPixmap:
    """A pixmap that fits ``box`` (logical pixels) and stays sharp on high-DPI screens."""
    if image.isNull():
        return QPixmap()
    target = QSize(
        max(1, round(box.width() * device_pixel_ratio)), max(1, round(box.height() * device_pixel_ratio))
    )
    scaled = image.scaled(
        target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    pixmap = QPixmap.fromImage(scaled)
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    return pixmap


def shrink(image: QImage, long_edge: int) -> QImage:
    """A smaller copy for thumbnails, so large photos are not rescaled on every paint."""
    if max(image.width(), image.height()) <= long_edge:
        return image
    return image.scaled(
        long_edge, long_edge, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_number(value: float, digits: int = 6) -> str:
    """Weights span 1e-3 .. 1e15; show them the way a person would type them."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e6:
        text = f"{value:.{digits}g}"
    else:
        mantissa, exponent = f"{value:.4e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exponent)}"
    return text


def describe_exception(error: BaseException) -> str:
    """One line for the message bar; engine errors already carry a user-facing message."""
    from engine.errors import PainterlyError

    if isinstance(error, PainterlyError):
        return str(error)
    if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        return (
            "Out of memory: the picture is too large for this computer. "
            "Try a smaller output size or the CPU device."
        )
    text = str(error).splitlines()[0] if str(error) else ""
    return f"Unexpected error ({type(error).__name__}{': ' + text if text else ''}). Details are in the log."


def guarded(method: F) -> F:
    """Turn an exception in a slot into a message in the window instead of a crash.

    The owner must provide ``report_exception(error)``.  Signals pass extra
    arguments (``clicked(bool)``); they are dropped when the method does not
    take them, so plain methods can be connected directly.
    """
    parameters = list(inspect.signature(method).parameters.values())[1:]
    takes_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    positional = sum(
        p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not takes_varargs:
            args = args[:positional]
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the point is to catch everything a slot can raise
            log.exception("error in %s", method.__qualname__)
            reporter = getattr(self, "report_exception", None)
            if reporter is None:
                window = self.window() if isinstance(self, QWidget) else None
                reporter = getattr(window, "report_exception", None)
            if reporter is not None:
                reporter(error)
            return None

    return wrapper  # type: ignore[return-value]


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with an ellipsis to fit, keeping both ends by default.

    File names keep their extension visible ("starry_ni…ght.jpg"); the full text is the tooltip.
    """

    def __init__(
        self, text: str = "", parent: QWidget | None = None, mode: Qt.TextElideMode | None = None
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode or Qt.TextElideMode.ElideMiddle
        # It shows file names: a name like "<img src=...>.png" must stay text, not become markup.
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(10, self.width()))
        super().setText(shown)


class WheelGuard(QObject):
    """Lets a spin box, slider or combo box take the mouse wheel only while it has the keyboard focus.

    Unfocused, the wheel goes on to the scroll area around it, so scrolling a settings panel never
    changes a value the pointer happens to pass over.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        parent = watched.parentWidget()
        while parent is not None and not isinstance(parent, QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            QCoreApplication.sendEvent(parent.viewport(), event)
        else:
            event.ignore()
        return True


def guard_wheel(root: QWidget) -> WheelGuard:
    """Install a WheelGuard (owned by ``root``) on every value control under ``root``."""
    guard = WheelGuard(root)
    for widget in root.findChildren(QWidget):
        if isinstance(widget, (QAbstractSpinBox, QAbstractSlider, QComboBox)):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(guard)
    return guard
