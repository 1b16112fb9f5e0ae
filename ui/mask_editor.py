"""Painting the regions: a canvas over the photo (or the result) and the tools an artist expects.

``MaskEditor`` takes the middle of the window while regions are being painted: a brush with size
and softness, an eraser, fill, clear, invert, a region per style (in the colour of that style's
list entry), the overlay's opacity, undo of strokes, loading and saving a region as a PNG, and the
usual keys ([ and ] brush size, X swaps brush and eraser, B brush, E eraser). A pen tablet's
pressure (``QTabletEvent``) sets the width and opacity of the line; the mouse paints at full
pressure. The masks themselves (``ui.masks.RegionMasks``) know nothing of this widget.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPointingDevice,
    QResizeEvent,
    QTabletEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from ui.imports import plain_tooltip, shown
from ui.masks import Brush, RegionMasks, render_overlay
from ui.prompts import Prompter
from ui.qtutil import guarded, tool_button

log = logging.getLogger(__name__)

MIN_BRUSH, MAX_BRUSH = 2, 600  # diameter in mask pixels
BRUSH_STEP = 1.25  # [ and ] change the size by this factor, as painting programs do
DEFAULT_OPACITY = 0.55
CANVAS_MARGIN = 10
MASK_FILTER = "PNG mask (*.png)"


@dataclass(frozen=True)
class Region:
    """A style as the editor shows it: its region's key, its name and its list entry's colour."""

    key: int
    name: str
    colour: QColor


class MaskCanvas(QWidget):
    """The photo (or the result) with the regions over it; the pointer paints into the masks."""

    def __init__(self, masks: RegionMasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MaskCanvas")
        self.masks = masks
        self.brush = Brush()
        self.current: int | None = None  # the region being painted
        self.regions: list[Region] = []
        self.opacity = DEFAULT_OPACITY
        self._background = QImage()
        self._scaled: QPixmap | None = None  # the background at the canvas's size, drawn each repaint
        self._overlay_pixels = np.zeros((1, 1, 4), np.uint8)
        self._overlay = QImage()
        self._hover: QPointF | None = None
        self._tablet_down = False
        self.last_pressure = 1.0
        self.setMouseTracking(True)
        self.setTabletTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(QSize(200, 150))
        masks.changed.connect(self._on_masks_changed)
        masks.resized.connect(self.refresh_overlay)

    # ------------------------------------------------------------ content
    def set_background(self, image: QImage | None) -> None:
        self._background = image if image is not None else QImage()
        self._scaled = None
        self.update()

    @property
    def background(self) -> QImage:
        return self._background

    def set_regions(self, regions: list[Region]) -> None:
        self.regions = list(regions)
        self.refresh_overlay()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = opacity
        self.refresh_overlay()

    def refresh_overlay(self) -> None:
        width, height = self.masks.size
        if (height, width) != self._overlay_pixels.shape[:2]:
            self._overlay_pixels = np.zeros((max(height, 1), max(width, 1), 4), np.uint8)
        self._render(None)

    def _on_masks_changed(self, rect: QRect) -> None:
        self._render(rect)

    def _render(self, rect: QRect | None) -> None:
        layers = [self.masks.layer(region.key) for region in self.regions] if self.masks.size[0] else []
        colours = [region.colour for region in self.regions][: len(layers)]
        if rect is None:
            self._overlay_pixels[:] = 0
        render_overlay(layers, colours, self.opacity, self._overlay_pixels, rect)
        height, width = self._overlay_pixels.shape[:2]
        # The QImage reads the numpy buffer directly: no copy per dab.
        self._overlay = QImage(
            self._overlay_pixels.data, width, height, width * 4, QImage.Format.Format_ARGB32_Premultiplied
        )
        self.update()

    def overlay_image(self) -> QImage:
        """The regions' colours as drawn over the picture (a copy), for the photo pane's thumbnail."""
        return self._overlay.copy()

    # ------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        """Where the picture is drawn in the widget: fitted, centred, proportions kept."""
        width, height = self.masks.size
        if not width or not height:
            width, height = self._background.width(), self._background.height()
        if not width or not height:
            return QRectF()
        area = QRectF(self.rect()).adjusted(CANVAS_MARGIN, CANVAS_MARGIN, -CANVAS_MARGIN, -CANVAS_MARGIN)
        scale = min(area.width() / width, area.height() / height)
        drawn = QRectF(0, 0, width * scale, height * scale)
        drawn.moveCenter(area.center())
        return drawn

    def to_mask(self, point: QPointF) -> tuple[float, float]:
        """A widget position in mask pixels."""
        rect = self.image_rect()
        width, height = self.masks.size
        if rect.isEmpty():
            return 0.0, 0.0
        return (
            (point.x() - rect.left()) * width / rect.width(),
            (point.y() - rect.top()) * height / rect.height(),
        )

    def to_widget(self, x: float, y: float) -> QPointF:
        rect = self.image_rect()
        width, height = self.masks.size
        return QPointF(rect.left() + x * rect.width() / width, rect.top() + y * rect.height() / height)

    def scale(self) -> float:
        """Widget pixels per mask pixel."""
        rect = self.image_rect()
        return rect.width() / self.masks.size[0] if self.masks.size[0] else 1.0

    # ------------------------------------------------------------ painting
    def _can_paint(self) -> bool:
        return self.current is not None and self.masks.size[0] > 0

    def press(self, point: QPointF, pressure: float = 1.0, erase: bool | None = None) -> None:
        """Begin a stroke at a widget position (the mouse, a pen, a test)."""
        if not self._can_paint():
            return
        assert self.current is not None
        brush = self.brush if erase is None else replace(self.brush, erase=erase)
        self.last_pressure = pressure
        self.masks.begin_stroke(self.current, brush, *self.to_mask(point), pressure)

    def drag_to(self, point: QPointF, pressure: float = 1.0) -> None:
        self._hover = QPointF(point)
        if self.masks.painting:
            self.last_pressure = pressure
            self.masks.stroke_to(*self.to_mask(point), pressure)
        self.update()

    def release(self) -> None:
        self.masks.end_stroke()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.setFocus()
            self.press(event.position())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.drag_to(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.release()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802
        # Accepted, so Qt does not also send the mouse events it would make of it.
        kind = event.type()
        pressure = float(event.pressure())
        if kind == QEvent.Type.TabletPress:
            self.setFocus()
            self._tablet_down = True
            erase = event.pointerType() == QPointingDevice.PointerType.Eraser or None
            self.press(event.position(), pressure, erase=erase)
        elif kind == QEvent.Type.TabletMove:
            self.drag_to(event.position(), pressure if self._tablet_down else 1.0)
        elif kind == QEvent.Type.TabletRelease:
            self._tablet_down = False
            self.release()
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self._scaled = None
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1b1b1d"))
        rect = self.image_rect()
        if rect.isEmpty():
            painter.setPen(QColor(220, 220, 220, 190))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "Add a photo and a style to paint where it goes"
            )
            painter.end()
            return
        if not self._background.isNull():
            if self._scaled is None or self._scaled.size() != rect.size().toSize():
                self._scaled = QPixmap.fromImage(
                    self._background.scaled(
                        rect.size().toSize(),
                        Qt.AspectRatioMode.IgnoreAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
                )
            painter.drawPixmap(rect.topLeft(), self._scaled)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(rect, self._overlay)
        if self._hover is not None and self._can_paint():
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            radius = max(1.0, self.brush.size / 2 * self.scale())
            for colour, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 230), 1.2)):
                painter.setPen(QPen(colour, width))
                painter.drawEllipse(self._hover, radius, radius)
        painter.end()


class MaskEditor(QWidget):
    """The canvas and its tools; ``closeRequested`` when the artist is done."""

    closeRequested = Signal()  # noqa: N815
    # Which part of the painting of region ``key`` its style comes from: ask for a mask; the whole.
    styleMaskRequested = Signal(int)  # noqa: N815
    styleMaskCleared = Signal(int)  # noqa: N815
    # The problem (one line) with a mask file that could not be loaded or saved.
    problem = Signal(str)

    def __init__(
        self,
        masks: RegionMasks,
        prompter: Prompter,
        result_image: Callable[[], QImage] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("MaskEditor")
        self.masks = masks
        self.prompter = prompter
        self.result_image = result_image or QImage
        self._photo = QImage()
        self.last_folder: Path | None = None
        self.canvas = MaskCanvas(masks)

        # -- which region
        self.region_combo = QComboBox()
        self.region_combo.setObjectName("RegionChoice")
        self.region_combo.setToolTip("The style whose region the brush paints, in its list entry's colour")
        self.region_combo.currentIndexChanged.connect(self._on_region_chosen)

        # -- brush and eraser
        self.brush_button = self._tool("brush", "Brush", "Paint this style's region (B)", checkable=True)
        self.eraser_button = self._tool("eraser", "Eraser", "Erase this style's region (E)", checkable=True)
        self.brush_button.setChecked(True)
        tools = QButtonGroup(self)
        tools.setExclusive(True)
        tools.addButton(self.brush_button)
        tools.addButton(self.eraser_button)
        self.brush_button.toggled.connect(self._on_tool)

        self.size_slider = self._slider(0, 1000, "Brush size ([ smaller, ] larger)")
        self.size_slider.setValue(self._size_to_slider(self.canvas.brush.size))
        self.size_slider.valueChanged.connect(self._on_size_slider)
        self.size_label = self._caption("40 px", "Brush diameter in pixels of the mask")
        self.softness_slider = self._slider(0, 100, "Softness: how gradually the brush's edge fades")
        self.softness_slider.setValue(round(self.canvas.brush.softness * 100))
        self.softness_slider.valueChanged.connect(self._on_softness)
        self.opacity_slider = self._slider(0, 100, "Overlay: how strongly the regions' colours show")
        self.opacity_slider.setValue(round(DEFAULT_OPACITY * 100))
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100))

        # -- whole regions
        self.fill_button = self._tool(
            "fill", "Fill", "Give this style every place no other style has (all of it when none is painted)"
        )
        self.clear_button = self._tool("remove", "Clear", "Remove this style's region")
        self.invert_button = self._tool(
            "invert", "Invert", "This style's region everywhere it is not, and nowhere it is"
        )
        self.undo_button = self._tool("undo", "", "Undo the last stroke (Ctrl+Z)")
        self.redo_button = self._tool("redo", "", "Redo (Ctrl+Shift+Z)")
        # Files and the painting's part behind one button: the bar has no room for four more.
        self.files_button = self._tool(
            "open", "Masks", "Load or save this region as a PNG, or take this style from part of its painting"
        )
        self.files_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        files_menu = QMenu(self.files_button)
        self.load_action = files_menu.addAction("Load this region from a PNG… (white: the style goes there)")
        self.save_action = files_menu.addAction("Save this region as a grey PNG…")
        files_menu.addSeparator()
        self.part_action = files_menu.addAction("Take this style from part of its painting…")
        self.part_action.setToolTip("A mask of the painting, white where its style is to come from")
        self.whole_action = files_menu.addAction("Take this style from the whole painting")
        self.files_button.setMenu(files_menu)
        self.load_action.triggered.connect(self.load_region)
        self.save_action.triggered.connect(self.save_region)
        self.part_action.triggered.connect(self._request_style_mask)
        self.whole_action.triggered.connect(self._clear_style_mask)
        self._style_masks: dict[int, str] = {}
        self.paint_over = QComboBox()
        self.paint_over.addItems(["Photo", "Result"])
        self.paint_over.setToolTip("Paint over the photo or over the painting on view")
        self.paint_over.currentIndexChanged.connect(lambda _: self._update_background())
        self.done_button = QToolButton()
        self.done_button.setText("Done")
        self.done_button.setToolTip("Back to the painting; the regions go with the next run")
        self.done_button.setObjectName("RegionsDone")

        self.fill_button.clicked.connect(lambda: self._whole(self.masks.fill))
        self.clear_button.clicked.connect(lambda: self._whole(self.masks.clear))
        self.invert_button.clicked.connect(lambda: self._whole(self.masks.invert))
        self.undo_button.clicked.connect(masks.undo_stack.undo)
        self.redo_button.clicked.connect(masks.undo_stack.redo)
        masks.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        masks.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.done_button.clicked.connect(self.closeRequested)

        self.hint = QLabel("")
        self.hint.setObjectName("Caption")
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        self.hint.setWordWrap(True)

        first = QHBoxLayout()
        first.setContentsMargins(6, 4, 6, 0)
        first.setSpacing(6)
        first.addWidget(QLabel("Region"))
        first.addWidget(self.region_combo, 1)
        first.addSpacing(6)
        first.addWidget(self.brush_button)
        first.addWidget(self.eraser_button)
        first.addSpacing(6)
        first.addWidget(self._label("Size", self.size_slider.toolTip()))
        first.addWidget(self.size_slider, 1)
        first.addWidget(self.size_label)
        first.addWidget(self._label("Softness", self.softness_slider.toolTip()))
        first.addWidget(self.softness_slider, 1)
        second = QHBoxLayout()
        second.setContentsMargins(6, 0, 6, 4)
        second.setSpacing(6)
        for button in (self.fill_button, self.clear_button, self.invert_button):
            second.addWidget(button)
        second.addSpacing(4)
        second.addWidget(self.undo_button)
        second.addWidget(self.redo_button)
        second.addSpacing(4)
        second.addWidget(self.files_button)
        second.addStretch(1)
        second.addWidget(self._label("Overlay", self.opacity_slider.toolTip()))
        second.addWidget(self.opacity_slider)
        second.addWidget(self._label("Over", self.paint_over.toolTip()))
        second.addWidget(self.paint_over)
        second.addWidget(self.done_button)
        bar = QFrame()
        bar.setObjectName("ViewBar")
        bar_layout = QVBoxLayout(bar)
        bar_layout.setContentsMargins(0, 0, 0, 0)
        bar_layout.setSpacing(2)
        bar_layout.addLayout(first)
        bar_layout.addLayout(second)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar)
        layout.addWidget(self.canvas, 1)
        self.hint.setContentsMargins(8, 2, 8, 4)
        layout.addWidget(self.hint)

        # The keys an artist expects while painting. They are claimed (ShortcutOverride) only while
        # the editor has the focus: the window's own X (flip the comparison) and Ctrl+Z work elsewhere.
        self.keys: dict[str, Callable[[], object]] = {
            "[": lambda: self.scale_brush(1 / BRUSH_STEP),
            "]": lambda: self.scale_brush(BRUSH_STEP),
            "X": self.swap_tool,
            "B": lambda: self.brush_button.setChecked(True),
            "E": lambda: self.eraser_button.setChecked(True),
            "Ctrl+Z": masks.undo_stack.undo,
            "Ctrl+Shift+Z": masks.undo_stack.redo,
            "Ctrl+Y": masks.undo_stack.redo,
            "Esc": self.closeRequested.emit,
        }
        masks.edited.connect(self._update_hint)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        self._update_size_label()
        self._update_enabled()

    # ------------------------------------------------------------ helpers
    def _tool(self, icon_name: str, text: str, tip: str, checkable: bool = False) -> QToolButton:
        button = tool_button(icon_name, text, tip)
        button.setCheckable(checkable)
        return button

    @staticmethod
    def _slider(low: int, high: int, tip: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setToolTip(tip)
        slider.setMinimumWidth(60)
        return slider

    @staticmethod
    def _label(text: str, tip: str) -> QLabel:
        label = QLabel(text)
        label.setToolTip(tip)
        return label

    @staticmethod
    def _caption(text: str, tip: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("Caption")
        label.setToolTip(tip)
        label.setMinimumWidth(label.fontMetrics().horizontalAdvance("600 px") + 4)
        return label

    def _key_action(self, event: QKeyEvent) -> Callable[[], object] | None:
        pressed = QKeySequence(event.keyCombination()).toString(QKeySequence.SequenceFormat.PortableText)
        return self.keys.get(pressed)

    def event(self, event: QEvent) -> bool:
        # A shortcut override reaches the focused control first, then its parents up to here.
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if self._key_action(event) is not None:
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        action = self._key_action(event)
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    # Brush size on a logarithmic slider: fine control of small brushes, one sweep to large ones.
    @staticmethod
    def _size_to_slider(size: float) -> int:
        span = math.log(MAX_BRUSH / MIN_BRUSH)
        return round(1000 * math.log(max(MIN_BRUSH, min(MAX_BRUSH, size)) / MIN_BRUSH) / span)

    @staticmethod
    def _slider_to_size(value: int) -> float:
        return MIN_BRUSH * (MAX_BRUSH / MIN_BRUSH) ** (value / 1000)

    # ------------------------------------------------------------ regions
    def set_regions(self, regions: list[Region]) -> None:
        """The styles, in list order; the region being painted stays chosen while its style does."""
        current = self.canvas.current
        self.region_combo.blockSignals(True)
        self.region_combo.clear()
        for region in regions:
            self.region_combo.addItem(_swatch(region.colour), shown(region.name), region.key)
        keys = [region.key for region in regions]
        index = keys.index(current) if current in keys else 0
        self.region_combo.setCurrentIndex(index if regions else -1)
        self.region_combo.blockSignals(False)
        self.canvas.set_regions(regions)
        self.canvas.current = keys[index] if regions else None
        self._update_enabled()
        self._update_hint()

    def set_style_masks(self, names: dict[int, str]) -> None:
        """The painting masks in use, by region: file names to show."""
        self._style_masks = dict(names)
        self._update_hint()

    def _request_style_mask(self) -> None:
        if self.canvas.current is not None:
            self.styleMaskRequested.emit(self.canvas.current)

    def _clear_style_mask(self) -> None:
        if self.canvas.current is not None:
            self.styleMaskCleared.emit(self.canvas.current)

    @property
    def current(self) -> int | None:
        return self.canvas.current

    def choose_region(self, key: int) -> None:
        index = self.region_combo.findData(key)
        if index >= 0:
            self.region_combo.setCurrentIndex(index)

    def _on_region_chosen(self, index: int) -> None:
        data = self.region_combo.itemData(index) if index >= 0 else None
        self.canvas.current = data if isinstance(data, int) else None
        self._update_hint()

    def set_photo(self, image: QImage | None) -> None:
        self._photo = image if image is not None else QImage()
        if image is not None and not image.isNull():
            self.masks.set_photo_size(image.width(), image.height())
        self._update_background()
        self._update_enabled()

    def _update_background(self) -> None:
        result = self.result_image() if self.paint_over.currentIndex() == 1 else QImage()
        self.canvas.set_background(result if not result.isNull() else self._photo)

    def refresh_result(self) -> None:
        """The painting on view changed: show it if the artist paints over the result."""
        self.paint_over.model().item(1).setEnabled(not self.result_image().isNull())  # type: ignore[attr-defined]
        self._update_background()

    def _update_enabled(self) -> None:
        ready = not self._photo.isNull() and self.region_combo.count() > 0
        for widget in (
            self.region_combo, self.brush_button, self.eraser_button, self.fill_button, self.clear_button,
            self.invert_button, self.files_button,
        ):  # fmt: skip
            widget.setEnabled(ready)

    def _update_hint(self) -> None:
        regions = self.canvas.regions
        if self._photo.isNull() or not regions:
            self.hint.setText("Add a photo and at least one style to paint where each style goes.")
            return
        painted = [r for r in regions if self.masks.painted(r.key)]
        if not painted:
            text = "Nothing painted: every style is blended over the whole picture."
        else:
            unpainted = [shown(r.name) for r in regions if r not in painted]
            text = "Unpainted places keep the photo."
            if unpainted:
                text += " Not painted anywhere: " + ", ".join(unpainted) + "."
        masks = self._style_masks
        parts = [f"{shown(r.name)} from {shown(masks[r.key])}" for r in regions if r.key in masks]
        if parts:
            text += " Style taken from part of the painting: " + "; ".join(parts) + "."
        self.whole_action.setEnabled(self.canvas.current in self._style_masks)
        keys = "[ ] size · X swap brush and eraser · B brush · E eraser · Ctrl+Z undo"
        self.hint.setText(f"{text}  {keys}")
        self.hint.setToolTip(plain_tooltip(text))

    # ------------------------------------------------------------ tools
    def _on_tool(self, brush_on: bool) -> None:
        self.canvas.brush = replace(self.canvas.brush, erase=not brush_on)

    def swap_tool(self) -> None:
        (self.eraser_button if self.brush_button.isChecked() else self.brush_button).setChecked(True)

    def set_brush_size(self, size: float) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, size))
        self.canvas.brush = replace(self.canvas.brush, size=size)
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(self._size_to_slider(size))
        self.size_slider.blockSignals(False)
        self._update_size_label()
        self.canvas.update()

    def scale_brush(self, factor: float) -> None:
        self.set_brush_size(self.canvas.brush.size * factor)

    def _on_size_slider(self, value: int) -> None:
        self.canvas.brush = replace(self.canvas.brush, size=self._slider_to_size(value))
        self._update_size_label()
        self.canvas.update()

    def _update_size_label(self) -> None:
        self.size_label.setText(f"{self.canvas.brush.size:.0f} px")

    def _on_softness(self, value: int) -> None:
        self.canvas.brush = replace(self.canvas.brush, softness=value / 100)

    def _whole(self, change: Callable[[int], None]) -> None:
        if self.canvas.current is not None:
            change(self.canvas.current)

    # ------------------------------------------------------------ files
    @guarded
    def load_region(self) -> None:
        key = self.canvas.current
        if key is None:
            return
        paths = self.prompter.open_images("Load a region mask", self.last_folder)
        if not paths:
            return
        self.last_folder = paths[0].parent
        try:
            self.masks.read_file(key, paths[0])
        except (InputError, OSError) as error:
            self.problem.emit(f"The mask was not loaded: {error}")

    @guarded
    def save_region(self) -> Path | None:
        key = self.canvas.current
        if key is None:
            return None
        name = self.region_combo.currentText() or "region"
        suggested = (self.last_folder or Path.home()) / f"{Path(name).stem}-mask.png"
        path, _ = self.prompter.save_file("Save the region as a mask", suggested, [MASK_FILTER], MASK_FILTER)
        if path is None:
            return None
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        self.last_folder = path.parent
        try:
            # The file dialog has already asked before replacing an existing file.
            return self.masks.save_file(key, path, overwrite=True)
        except (InputError, OSError) as error:
            self.problem.emit(f"The mask was not saved: {error}")
            return None

    def report_exception(self, error: BaseException) -> None:
        self.problem.emit(str(error))


def _swatch(colour: QColor) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(colour)
    return QIcon(pixmap)
