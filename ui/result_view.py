"""The result pane: the painting as it is optimised, zoom and pan, compare with the photo."""

from __future__ import annotations

import logging

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QStyleOptionGraphicsItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.qtutil import tool_button

log = logging.getLogger(__name__)

MIN_ZOOM = 0.02
MAX_ZOOM = 32.0
BADGE_MARGIN = 12
# The badge is a widget over the view, not a Python paint override: it costs nothing per frame.
BADGE_STYLE = (
    "QLabel { background: rgba(20, 20, 22, 200); color: #f2f2f2; border: 1px solid #e39a3b; "
    "border-radius: 11px; padding: 3px 11px; font-weight: 600; }"
)


class SplitPixmapItem(QGraphicsPixmapItem):
    """The photo, drawn only left of the split line, so it can be wiped over the painting."""

    def __init__(self) -> None:
        super().__init__()
        self.split = 0.0  # share of the width shown, 0..1

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.split <= 0 or self.pixmap().isNull():
            return
        rect = QRectF(self.pixmap().rect())
        rect.setWidth(rect.width() * min(1.0, self.split))
        painter.save()
        painter.setClipRect(rect)
        super().paint(painter, option, widget)
        painter.restore()


class ImageView(QGraphicsView):
    """A zoomable, pannable canvas showing the result, with the photo under a split line."""

    zoomChanged = Signal(float)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ImageView")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.result_item = QGraphicsPixmapItem()
        self.result_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.photo_item = SplitPixmapItem()
        self.photo_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.frame_item = QGraphicsRectItem()
        frame_pen = QPen(QColor(0, 0, 0, 150), 3)
        frame_pen.setCosmetic(True)  # 3 screen pixels at any zoom
        self.frame_item.setPen(frame_pen)
        self.frame_item.setZValue(-1)
        self.split_line = QGraphicsLineItem()
        line_pen = QPen(self.palette().highlight().color(), 2)
        line_pen.setCosmetic(True)
        self.split_line.setPen(line_pen)
        self.split_line.setZValue(2)
        self.split_line.setVisible(False)
        self._scene.addItem(self.frame_item)
        self._scene.addItem(self.result_item)
        self._scene.addItem(self.photo_item)
        self._scene.addItem(self.split_line)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setBackgroundBrush(QColor("#1b1b1d"))
        self._fit = True
        self._split = 0.0
        self._hold = False
        self._canvas = QSize(0, 0)  # output size in pixels: the scene's coordinate system
        self._photo = QImage()
        self._has_result = False
        self.badge = QLabel(self)
        self.badge.setObjectName("DraftBadge")
        self.badge.setTextFormat(Qt.TextFormat.PlainText)
        self.badge.setStyleSheet(BADGE_STYLE)
        self.badge.hide()
        self.hint = "Your painting appears here"
        self.subhint = (
            "Add a photo and a style on the left: an instant draft appears at once, and Run (Ctrl+R) "
            "paints it properly"
        )
        self.setToolTip(
            "The painting as it is being made. Scroll to zoom, drag to pan; hold Space or C to see "
            "the photo instead."
        )

    # -- content --------------------------------------------------------------
    @property
    def has_result(self) -> bool:
        return self._has_result

    @property
    def canvas_size(self) -> QSize:
        return QSize(self._canvas)

    def result_image(self) -> QImage:
        return self.result_item.pixmap().toImage() if self._has_result else QImage()

    def set_canvas_size(self, size: QSize) -> None:
        """The output's size; smaller previews (coarse levels) are stretched to it so zoom stays put."""
        if size.isEmpty() or size == self._canvas:
            return
        self._canvas = QSize(size)
        self._scene.setSceneRect(QRectF(0, 0, size.width(), size.height()))
        self._place(self.result_item)
        self._place(self.photo_item)
        self._update_overlays()
        if self._fit:
            self.fit()

    def _place(self, item: QGraphicsPixmapItem) -> None:
        pixmap = item.pixmap()
        if pixmap.isNull() or self._canvas.isEmpty():
            return
        item.setTransform(
            QTransform.fromScale(
                self._canvas.width() / pixmap.width(), self._canvas.height() / pixmap.height()
            )
        )

    def set_result(self, image: QImage | None) -> None:
        if image is None or image.isNull():
            self.result_item.setPixmap(QPixmap())
            self._has_result = False
            self._update_photo_visibility()
            self.viewport().update()
            return
        first = not self._has_result
        self.result_item.setPixmap(QPixmap.fromImage(image))
        self._has_result = True
        if self._canvas.isEmpty():
            self.set_canvas_size(image.size())
        self._place(self.result_item)
        self._update_photo_visibility()
        if first and self._fit:
            self.fit()

    def set_photo(self, image: QImage | None) -> None:
        self._photo = image if image is not None else QImage()
        self.photo_item.setPixmap(QPixmap.fromImage(self._photo) if not self._photo.isNull() else QPixmap())
        if not self._has_result and not self._photo.isNull():
            # Before any painting, the canvas has the photo's proportions.
            self._canvas = QSize()
            self.set_canvas_size(self._photo.size())
        self._place(self.photo_item)
        self._update_photo_visibility()
        self.viewport().update()

    def clear(self) -> None:
        self.set_result(None)

    # -- badge ----------------------------------------------------------------
    def set_badge(self, text: str, tip: str = "") -> None:
        """A label in the view's top-left corner (the draft's mark); empty text hides it."""
        self.badge.setText(text)
        self.badge.setToolTip(tip)
        self.badge.setVisible(bool(text))
        if text:
            self.badge.adjustSize()
            self._place_badge()
            self.badge.raise_()

    @property
    def badge_text(self) -> str:
        return self.badge.text() if not self.badge.isHidden() else ""

    def _place_badge(self) -> None:
        corner = self.viewport().geometry().topLeft()
        self.badge.move(corner.x() + BADGE_MARGIN, corner.y() + BADGE_MARGIN)

    # -- compare --------------------------------------------------------------
    @property
    def split(self) -> float:
        return self._split

    def set_split(self, split: float) -> None:
        self._split = max(0.0, min(1.0, split))
        self._update_photo_visibility()

    def set_hold_compare(self, hold: bool) -> None:
        self._hold = hold
        self._update_photo_visibility()

    @property
    def showing_photo(self) -> float:
        """How much of the width shows the photo (1 = all of it)."""
        return self.photo_item.split if self.photo_item.isVisible() else 0.0

    def _update_photo_visibility(self) -> None:
        if self._photo.isNull():
            self.photo_item.setVisible(False)
        elif not self._has_result or self._hold:
            self.photo_item.split = 1.0
            self.photo_item.setVisible(True)
        else:
            self.photo_item.split = self._split
            self.photo_item.setVisible(self._split > 0)
        self.photo_item.update()
        self._update_overlays()
        self.viewport().update()

    # -- zoom -----------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    @property
    def fitting(self) -> bool:
        return self._fit

    def fit(self) -> None:
        self._fit = True
        rect = self._scene.sceneRect()
        if rect.isEmpty():
            return
        margin = 16
        available = self.viewport().rect().adjusted(margin, margin, -margin, -margin)
        if available.width() <= 0 or available.height() <= 0:
            return
        scale = min(available.width() / rect.width(), available.height() / rect.height(), MAX_ZOOM)
        self._apply_zoom(scale)
        self.centerOn(rect.center())

    def actual_pixels(self) -> None:
        """One image pixel to one screen pixel, whatever the display scaling."""
        self._fit = False
        self._apply_zoom(1.0 / self.devicePixelRatioF())

    def zoom_by(self, factor: float) -> None:
        self._fit = False
        self._apply_zoom(max(MIN_ZOOM, min(MAX_ZOOM, self.zoom * factor)))

    def _apply_zoom(self, scale: float) -> None:
        self.setTransform(QTransform.fromScale(scale, scale))
        # Zoomed in on purpose, pixels stay crisp squares (an artist inspects brush marks); fitted or
        # reduced, the picture is smoothed so a small painting does not look like a mosaic.
        smooth = self._fit or scale * self.devicePixelRatioF() < 2.0
        mode = (
            Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        )
        self.result_item.setTransformationMode(mode)
        self.photo_item.setTransformationMode(mode)
        self.zoomChanged.emit(scale * self.devicePixelRatioF())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.zoom_by(1.0015**delta)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place_badge()
        if self._fit:
            self.fit()

    # -- painting -------------------------------------------------------------
    # -- painting -------------------------------------------------------------
    # The frame and the split line are C++ graphics items: during a run the view repaints several
    # times a second, and a Python paint override would compete with the worker for the GIL.
    def _update_overlays(self) -> None:
        canvas = QRectF(0, 0, self._canvas.width(), self._canvas.height())
        self.frame_item.setRect(canvas)
        self.frame_item.setVisible(not canvas.isEmpty() and (self._has_result or not self._photo.isNull()))
        split = self.photo_item.split
        show_line = self._has_result and not self._hold and self.photo_item.isVisible() and 0 < split < 1
        if show_line:
            x = canvas.width() * split
            self.split_line.setLine(x, 0, x, canvas.height())
        self.split_line.setVisible(show_line)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self._has_result and not (self._hold and not self._photo.isNull()):
            return  # the common case while painting: nothing on top of the picture
        painter.save()
        painter.resetTransform()
        viewport = QRectF(self.viewport().rect())
        if not self._has_result and self._photo.isNull():
            self._draw_empty(painter, viewport)
        elif not self._has_result:
            self._draw_pill(painter, viewport, "The photo · press Run (Ctrl+R) to paint it")
        else:
            self._draw_pill(painter, viewport, "Photo (release to see the painting)")
        painter.restore()

    def _draw_empty(self, painter: QPainter, viewport: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        box = QRectF(0, 0, min(460, viewport.width() - 40), 150)
        box.moveCenter(viewport.center())
        pen = QPen(QColor(255, 255, 255, 40), 1.5, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(box, 12, 12)
        title = QFont(self.font())
        title.setPointSizeF(title.pointSizeF() * 1.5)
        painter.setFont(title)
        painter.setPen(QColor(230, 230, 230, 200))
        painter.drawText(
            box.adjusted(16, 24, -16, -box.height() / 2), Qt.AlignmentFlag.AlignCenter, self.hint
        )
        painter.setFont(self.font())
        painter.setPen(QColor(200, 200, 200, 150))
        painter.drawText(
            box.adjusted(16, box.height() / 2, -16, -16),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
            self.subhint,
        )

    def _draw_pill(self, painter: QPainter, viewport: QRectF, text: str) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 24
        height = metrics.height() + 12
        pill = QRectF(0, 0, width, height)
        pill.moveCenter(QPointF(viewport.center().x(), viewport.bottom() - height))
        path = QPainterPath()
        path.addRoundedRect(pill, height / 2, height / 2)
        painter.fillPath(path, QColor(0, 0, 0, 170))
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)


class ResultView(QWidget):
    """The view plus its toolbar: fit, 100%, zoom readout, photo colours and the compare slider."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView()
        self.fit_button = self._tool("zoom-fit", "Fit", "Fit the whole picture in the view (Ctrl+0)")
        self.actual_button = self._tool(
            "zoom-100", "100%", "Show the picture at its actual pixels, one per screen pixel (Ctrl+1)"
        )
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("Caption")
        self.zoom_label.setToolTip("Current zoom; scroll over the picture to zoom, drag to pan")
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("3200%") + 8)
        self.compare_label = QLabel("Compare")
        self.compare_label.setToolTip(self._compare_tip())
        self.compare = QSlider(Qt.Orientation.Horizontal)
        self.compare.setRange(0, 1000)
        self.compare.setValue(0)
        self.compare.setMinimumWidth(70)
        self.compare.setMaximumWidth(260)
        self.compare.setToolTip(self._compare_tip())
        self.photo_colors_label = QLabel("Photo colours")
        self.photo_colors = QSlider(Qt.Orientation.Horizontal)
        self.photo_colors.setObjectName("PhotoColours")
        self.photo_colors.setMinimumWidth(50)
        self.photo_colors.setMaximumWidth(140)
        self.photo_colors_value = QLabel("")
        self.photo_colors_value.setObjectName("Caption")
        readout_width = self.photo_colors_value.fontMetrics().horizontalAdvance("100%") + 4
        self.photo_colors_value.setMinimumWidth(readout_width)
        self.size_label = QLabel("")
        self.size_label.setObjectName("Caption")
        self.size_label.setToolTip("Size of the painting in pixels")
        self.draft_button = QToolButton()
        self.draft_button.setObjectName("ShowDraft")
        self.draft_button.setText("Show draft")
        self.draft_button.setAutoRaise(True)
        self.draft_button.setToolTip(
            "Show the instant draft of the current photo, styles and strength instead of this picture "
            "(the picture stays in History)"
        )
        self.draft_button.hide()

        for label in (self.size_label, self.photo_colors_label, self.compare_label):
            # Labels keep their text whole; the sliders give way when the bar is narrow.
            label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)

        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.actual_pixels)
        self.compare.valueChanged.connect(lambda value: self.view.set_split(value / 1000))
        self.view.zoomChanged.connect(self._on_zoom)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 4)
        bar.setSpacing(6)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        bar.addWidget(self.zoom_label)
        bar.addSpacing(6)
        bar.addWidget(self.size_label)
        bar.addStretch(1)
        bar.addWidget(self.draft_button)
        bar.addSpacing(8)
        bar.addWidget(self.photo_colors_label)
        bar.addWidget(self.photo_colors)
        bar.addWidget(self.photo_colors_value)
        bar.addSpacing(8)
        bar.addWidget(self.compare_label)
        bar.addWidget(self.compare)
        toolbar = QFrame()
        toolbar.setObjectName("ViewBar")
        toolbar.setLayout(bar)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(toolbar)
        layout.addWidget(self.view, 1)

    @staticmethod
    def _compare_tip() -> str:
        return (
            "Compare with the photo: slide right to wipe the photo over the painting from the left. "
            "Hold Space or C to see the whole photo."
        )

    def _tool(self, icon_name: str, text: str, tip: str) -> QToolButton:
        return tool_button(icon_name, text, tip)

    def _on_zoom(self, zoom: float) -> None:
        empty = self.view.canvas_size.isEmpty()
        self.zoom_label.setText("" if empty else f"{zoom * 100:.0f}%")

    def set_size_text(self, text: str) -> None:
        self.size_label.setText(text)
