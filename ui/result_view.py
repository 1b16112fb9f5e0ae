"""The result pane: the painting as it is optimised, zoom and pan, compare with the photo."""

from __future__ import annotations

import logging

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QImage,
    QMouseEvent,
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
    QMenu,
    QSizePolicy,
    QSlider,
    QStyleOptionGraphicsItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.qtutil import tool_button
from ui.thumbs import mime_may_hold_image

log = logging.getLogger(__name__)

MIN_ZOOM = 0.02
MAX_ZOOM = 32.0
BADGE_MARGIN = 12
# The badge is a widget over the view, not a Python paint override: it costs nothing per frame.
BADGE_STYLE = (
    "QLabel { background: rgba(20, 20, 22, 200); color: #f2f2f2; border: 1px solid #e39a3b; "
    "border-radius: 11px; padding: 3px 11px; font-weight: 600; }"
)
# The names of the two pictures beside the split line.
SIDE_STYLE = (
    "QLabel { background: rgba(20, 20, 22, 190); color: #f2f2f2; border-radius: 9px; padding: 2px 9px; }"
)
SIZE_STYLE = (
    "QLabel { background: rgba(20, 20, 22, 150); color: #c8c8cc; border-radius: 8px; padding: 1px 8px; }"
)
# How close (screen pixels) the pointer must be to the split line to drag it rather than pan.
SPLIT_GRAB = 8


class SplitPixmapItem(QGraphicsPixmapItem):
    """The comparison picture, drawn only left of the split line, so it can be wiped over the other."""

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
    """A zoomable, pannable canvas: the picture on view (A) with another one (B) under a split line.

    A is what the window shows (the run, a history entry, the draft); B is what it is compared with:
    the photo unless ``set_reference`` names another picture. ``flip`` swaps the two, so the same
    key shows A, then B, in the same place. The split line can be dragged on the picture itself.
    """

    zoomChanged = Signal(float)  # noqa: N815
    splitChanged = Signal(float)  # noqa: N815 - the divider was dragged on the picture
    droppedOn = Signal(object)  # noqa: N815 - QMimeData of a drop on the canvas (valid during the call)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ImageView")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.result_item = QGraphicsPixmapItem()
        self.result_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        # The comparison side (the photo unless another picture was chosen), wiped over the result.
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
        self.setAcceptDrops(True)
        self.viewport().setMouseTracking(True)
        self._fit = True
        self._split = 0.0
        self._hold = False
        self._flipped = False
        self._dragging_split = False
        self._canvas = QSize(0, 0)  # output size in pixels: the scene's coordinate system
        self._photo = QImage()
        self._result = QPixmap()  # A: the picture on view
        self._reference = QImage()  # B when it is not the photo
        self._b_pixmap = QPixmap()  # B as drawn: made when B changes, not with every frame of a run
        self._labels = ("Painting", "Photo")  # what A and B are, in words
        self.badge = QLabel(self)
        self.badge.setObjectName("DraftBadge")
        self.badge.setTextFormat(Qt.TextFormat.PlainText)
        self.badge.setStyleSheet(BADGE_STYLE)
        self.badge.hide()
        # Which picture is on which side of the split line: two small labels at the bottom corners.
        self.side_labels = (QLabel(self), QLabel(self))
        for label in self.side_labels:
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setStyleSheet(SIDE_STYLE)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.hide()
        self.size_label = QLabel(self)
        self.size_label.setObjectName("SizeCaption")
        self.size_label.setTextFormat(Qt.TextFormat.PlainText)
        self.size_label.setStyleSheet(SIZE_STYLE)
        self.size_label.setToolTip("Size of the painting in pixels")
        self.size_label.hide()
        self.hint = "Your painting appears here"
        self.subhint = (
            "Drop a photo and paintings here, or add them on the left: an instant draft appears at once, "
            "and Run (Ctrl+R) paints it properly"
        )
        self.setToolTip(
            "The painting as it is being made. Scroll to zoom, drag to pan; drag the split line to compare, "
            "hold Space or C to see the other picture, press X to flip between them."
        )

    # -- content --------------------------------------------------------------
    @property
    def has_result(self) -> bool:
        return not self._result.isNull()

    @property
    def canvas_size(self) -> QSize:
        return QSize(self._canvas)

    def result_image(self) -> QImage:
        return self._result.toImage() if self.has_result else QImage()

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
        """A: the picture on view (a run's preview, its result, a history entry, the draft)."""
        first = not self.has_result
        self._result = QPixmap() if image is None or image.isNull() else QPixmap.fromImage(image)
        if self.has_result and self._canvas.isEmpty():
            self.set_canvas_size(image.size())  # type: ignore[union-attr]
        self._show_sides()
        if first and self.has_result and self._fit:
            self.fit()

    def set_photo(self, image: QImage | None) -> None:
        self._photo = image if image is not None else QImage()
        self._make_b_pixmap()
        if not self.has_result and not self._photo.isNull():
            # Before any painting, the canvas has the photo's proportions.
            self._canvas = QSize()
            self.set_canvas_size(self._photo.size())
        self._show_sides()

    def clear(self) -> None:
        self.set_result(None)

    # -- what is compared -----------------------------------------------------
    def set_reference(self, image: QImage | None, label: str = "") -> None:
        """B: the picture compared with the one on view; None compares with the photo again."""
        self._reference = image if image is not None and not image.isNull() else QImage()
        self._labels = (self._labels[0], label if not self._reference.isNull() else "Photo")
        self._make_b_pixmap()
        self._show_sides()

    def set_labels(self, shown: str, reference: str | None = None) -> None:
        """What the picture on view (A) and, optionally, the comparison (B) are, in words."""
        self._labels = (shown or "Painting", self._labels[1] if reference is None else reference)
        self._update_overlays()

    @property
    def labels(self) -> tuple[str, str]:
        """(A, B) in words."""
        return self._labels

    @property
    def compares_with_photo(self) -> bool:
        return self._reference.isNull()

    def reference_image(self) -> QImage:
        """B: the chosen picture, or the photo."""
        return self._photo if self._reference.isNull() else self._reference

    @property
    def flipped(self) -> bool:
        return self._flipped

    def flip(self) -> None:
        """Swap the picture on view and the comparison: the one under the line comes to the top."""
        if not self.has_result or self.reference_image().isNull():
            return
        self._flipped = not self._flipped
        self._show_sides()

    def set_flipped(self, flipped: bool) -> None:
        if flipped != self._flipped:
            self._flipped = flipped
            self._show_sides()

    @property
    def shown_side(self) -> str:
        """'A' or 'B': which picture fills the view outside the split (and under a closed split)."""
        return "B" if self._flipped and self.has_result else "A"

    def _make_b_pixmap(self) -> None:
        reference = self.reference_image()
        self._b_pixmap = QPixmap.fromImage(reference) if not reference.isNull() else QPixmap()

    def _show_sides(self) -> None:
        """Put A and B into the two items: normally A below and B wiped over it; flipped, the other way."""
        b = self._b_pixmap
        if not self.has_result:
            self._flipped = False
        base, over = (b, self._result) if self._flipped else (self._result, b)
        # During a run only A changes: the item that already shows B is left alone.
        for item, pixmap in ((self.result_item, base), (self.photo_item, over)):
            if item.pixmap().cacheKey() != pixmap.cacheKey() or pixmap.isNull() != item.pixmap().isNull():
                item.setPixmap(pixmap)
                self._place(item)
        self._update_photo_visibility()
        self.viewport().update()

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

    def set_size_text(self, text: str) -> None:
        """The picture's size and what it is, in the view's top-right corner."""
        self.size_label.setText(text)
        self.size_label.setVisible(bool(text))
        self._place_size_label()

    def _place_size_label(self) -> None:
        if self.size_label.isHidden():
            return
        self.size_label.adjustSize()
        port = self.viewport().geometry()
        self.size_label.move(port.right() - self.size_label.width() - BADGE_MARGIN, port.top() + BADGE_MARGIN)
        self.size_label.raise_()

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
        """How much of the width shows the picture under the split line (1 = all of it)."""
        return self.photo_item.split if self.photo_item.isVisible() else 0.0

    @property
    def showing_reference(self) -> float:
        """How much of the width shows B, the comparison picture (1 = all of it)."""
        over = self.showing_photo
        if not self.has_result:
            return over
        return 1.0 - over if self._flipped else over

    def _update_photo_visibility(self) -> None:
        if self.photo_item.pixmap().isNull():
            self.photo_item.setVisible(False)
        elif not self.has_result or self._hold:
            self.photo_item.split = 1.0
            self.photo_item.setVisible(True)
        else:
            self.photo_item.split = self._split
            self.photo_item.setVisible(self._split > 0)
        self.photo_item.update()
        self._update_overlays()
        self.viewport().update()

    # -- the divider, dragged on the picture ----------------------------------
    def _line_x(self) -> float | None:
        """Where the split line is on screen (viewport x), or None when there is no comparison."""
        if not self.has_result or self.photo_item.pixmap().isNull() or self._canvas.isEmpty() or self._hold:
            return None
        scene_x = self._canvas.width() * self._split
        return float(self.mapFromScene(QPointF(scene_x, self._canvas.height() / 2)).x())

    def _near_line(self, x: float) -> bool:
        line = self._line_x()
        return line is not None and abs(x - line) <= SPLIT_GRAB

    def _split_at(self, x: float) -> float:
        scene = self.mapToScene(round(x), 0)
        return max(0.0, min(1.0, scene.x() / max(1, self._canvas.width())))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._near_line(event.position().x()):
            self._dragging_split = True
            self.viewport().setCursor(Qt.CursorShape.SplitHCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        x = event.position().x()
        if self._dragging_split:
            self.set_split(self._split_at(x))
            self.splitChanged.emit(self._split)
            event.accept()
            return
        if not event.buttons():
            if self._near_line(x):
                self.viewport().setCursor(Qt.CursorShape.SplitHCursor)
            elif self.viewport().cursor().shape() == Qt.CursorShape.SplitHCursor:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._dragging_split and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_split = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # -- drops ----------------------------------------------------------------
    # The canvas says "Your painting appears here": a photo or paintings dropped on it are taken
    # (ui.drops decides which is which). QGraphicsView would hand them to the scene, which has no taker.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if mime_may_hold_image(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        event.acceptProposedAction()
        self.droppedOn.emit(event.mimeData())

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
        self._place_size_label()
        self._place_side_labels()
        if self._fit:
            self.fit()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802
        super().scrollContentsBy(dx, dy)
        self._place_side_labels()

    # -- painting -------------------------------------------------------------
    # The frame and the split line are C++ graphics items: during a run the view repaints several
    # times a second, and a Python paint override would compete with the worker for the GIL.
    def _update_overlays(self) -> None:
        canvas = QRectF(0, 0, self._canvas.width(), self._canvas.height())
        self.frame_item.setRect(canvas)
        self.frame_item.setVisible(not canvas.isEmpty() and (self.has_result or not self._photo.isNull()))
        split = self.photo_item.split
        show_line = self.has_result and not self._hold and self.photo_item.isVisible() and 0 < split <= 1
        if show_line:
            x = canvas.width() * split
            self.split_line.setLine(x, 0, x, canvas.height())
        self.split_line.setVisible(show_line)
        self._place_side_labels()

    def _side_words(self) -> tuple[str, str]:
        """(left of the line, right of it): the picture wiped over, then the one under it."""
        shown, reference = self._labels
        return (shown, reference) if self._flipped else (reference, shown)

    def _place_side_labels(self) -> None:
        left, right = self.side_labels
        split = self.photo_item.split
        comparing = self.has_result and not self._hold and self.photo_item.isVisible() and 0 < split < 1
        if not comparing:
            left.hide()
            right.hide()
            return
        left_text, right_text = self._side_words()
        port = self.viewport().geometry()
        line = self._line_x() or 0.0
        for label, text in ((left, f"◀ {left_text}"), (right, f"{right_text} ▶")):
            label.setText(text)
            label.adjustSize()
        y = port.bottom() - left.height() - BADGE_MARGIN
        left.move(max(port.left() + 4, round(port.left() + line - left.width() - 8)), y)
        right.move(min(port.right() - right.width() - 4, round(port.left() + line + 8)), y)
        for label in (left, right):
            label.show()
            label.raise_()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self.has_result and not (self._hold and not self.photo_item.pixmap().isNull()):
            return  # the common case while painting: nothing on top of the picture
        painter.save()
        painter.resetTransform()
        viewport = QRectF(self.viewport().rect())
        if not self.has_result and self._photo.isNull():
            self._draw_empty(painter, viewport)
        elif not self.has_result:
            self._draw_pill(painter, viewport, "The photo · press Run (Ctrl+R) to paint it")
        else:
            left, right = self._side_words()
            self._draw_pill(painter, viewport, f"{left} (release to see {right.lower()})")
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
    """The view plus its toolbar: fit, 1:1 and one zoom readout; photo colours; what to compare with."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView()
        self.fit_button = self._tool("zoom-fit", "Fit", "Fit the whole picture in the view (Ctrl+0)")
        # The icon reads "1:1"; beside a zoom readout a "100%" label would read as a second zoom level.
        self.actual_button = self._tool(
            "zoom-100", "", "1:1 — show the picture at its actual pixels, one per screen pixel (Ctrl+1)"
        )
        self.actual_button.setAccessibleName("Actual pixels (1:1)")
        self.zoom_label = QLabel("")
        self.zoom_label.setObjectName("ZoomReadout")
        self.zoom_label.setToolTip("Zoom: scroll over the picture to zoom, drag to pan")
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("3200%") + 8)
        self.compare_menu = QMenu(self)
        self.compare_button = QToolButton()
        self.compare_button.setObjectName("CompareWith")
        self.compare_button.setText("Compare: Photo ▾")
        # The arrow is in the text: Fusion's own indicator would sit on top of the last letter.
        self.compare_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.compare_button.setAutoRaise(True)
        self.compare_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.compare_button.setMenu(self.compare_menu)
        # It names what the picture is compared with: kept whole, the sliders give way instead.
        self.compare_button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        self.compare_button.setToolTip(
            "What the picture is compared with: the photo, the instant draft or a run in History "
            "(right-click a History thumbnail: Compare with the picture on view)"
        )
        self.compare = QSlider(Qt.Orientation.Horizontal)
        self.compare.setRange(0, 1000)
        self.compare.setValue(0)
        self.compare.setMinimumWidth(50)
        self.compare.setMaximumWidth(180)
        self.compare.setToolTip(self._compare_tip())
        self.flip_button = self._tool("", "⇄", "Flip: swap the picture on view and the one compared with (X)")
        self.flip_button.setAccessibleName("Flip")
        self.flip_button.setObjectName("FlipButton")
        self.photo_colors_label = QLabel("Photo colours")
        self.photo_colors = QSlider(Qt.Orientation.Horizontal)
        self.photo_colors.setObjectName("PhotoColours")
        self.photo_colors.setMinimumWidth(40)
        self.photo_colors.setMaximumWidth(120)
        self.photo_colors_value = QLabel("")
        self.photo_colors_value.setObjectName("Caption")
        readout_width = self.photo_colors_value.fontMetrics().horizontalAdvance("100%") + 4
        self.photo_colors_value.setMinimumWidth(readout_width)
        # The picture's size sits on the picture (top right): the toolbar keeps its room for controls.
        self.size_label = self.view.size_label
        self.draft_button = QToolButton()
        self.draft_button.setObjectName("ShowDraft")
        self.draft_button.setText("Show draft")
        self.draft_button.setAutoRaise(True)
        self.draft_button.setToolTip(
            "Show the instant draft of the current photo, styles and strength instead of this picture "
            "(the picture stays in History)"
        )
        self.draft_button.hide()

        # Labels keep their text whole; the sliders give way when the bar is narrow.
        self.photo_colors_label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)

        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.actual_pixels)
        self.compare.valueChanged.connect(lambda value: self.view.set_split(value / 1000))
        self.view.splitChanged.connect(self._on_split_dragged)
        self.flip_button.clicked.connect(self.view.flip)
        self.view.zoomChanged.connect(self._on_zoom)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 4)
        bar.setSpacing(4)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        bar.addWidget(self.zoom_label)
        bar.addSpacing(4)
        bar.addWidget(self.draft_button)
        bar.addStretch(1)
        bar.addSpacing(6)
        bar.addWidget(self.photo_colors_label)
        bar.addWidget(self.photo_colors)
        bar.addWidget(self.photo_colors_value)
        bar.addSpacing(6)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.compare)
        bar.addWidget(self.flip_button)
        toolbar = QFrame()
        toolbar.setObjectName("ViewBar")
        toolbar.setLayout(bar)
        self.toolbar = toolbar

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(toolbar)
        layout.addWidget(self.view, 1)

    @staticmethod
    def _compare_tip() -> str:
        return (
            "Split: slide right, or drag the line on the picture, to wipe the comparison over the picture "
            "from the left. Hold Space or C to see it whole; X flips between the two."
        )

    def _tool(self, icon_name: str, text: str, tip: str) -> QToolButton:
        if not icon_name:
            button = QToolButton()
            button.setText(text)
            button.setAutoRaise(True)
            button.setToolTip(tip)
            return button
        return tool_button(icon_name, text, tip)

    def _on_zoom(self, zoom: float) -> None:
        empty = self.view.canvas_size.isEmpty()
        self.zoom_label.setText("" if empty else f"{zoom * 100:.0f}%")

    def _on_split_dragged(self, split: float) -> None:
        self.compare.blockSignals(True)
        self.compare.setValue(round(split * 1000))
        self.compare.blockSignals(False)

    def set_compare_text(self, reference: str) -> None:
        self.compare_button.setText(f"Compare: {reference} ▾")

    def open_split(self) -> None:
        """Show the comparison beside the picture (half and half) unless a split is already open."""
        if self.compare.value() in (0, self.compare.maximum()):
            self.compare.setValue(self.compare.maximum() // 2)

    def set_size_text(self, text: str) -> None:
        self.view.set_size_text(text)
