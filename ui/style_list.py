"""The style pane: several paintings, each with a blend slider; remove and reorder them."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import (
    QDrag,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QMouseEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.imports import ImageImporter, ImportedImage, ImportResult, plain_tooltip, shown
from ui.qtutil import ElidedLabel, guarded, icon, tool_button
from ui.thumbs import ImageThumb, mime_may_hold_image, paste_into

log = logging.getLogger(__name__)

ROW_MIME = "application/x-painterly-style-row"
DEFAULT_BLEND = 100


class StyleRow(QFrame):
    """One style image: thumbnail, name and size, blend slider, move and remove buttons."""

    blendChanged = Signal()  # noqa: N815
    moveRequested = Signal(int)  # -1 up, +1 down  # noqa: N815
    removeRequested = Signal()  # noqa: N815

    def __init__(
        self, image: ImportedImage, blend: float = DEFAULT_BLEND, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("StyleRow")
        self.image = image
        self._press: QPoint | None = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)

        self.thumb = ImageThumb("", minimum=QSize(72, 60))
        self.thumb.setFixedSize(80, 64)
        self.thumb.set_image(image.preview)
        self.thumb.setToolTip(plain_tooltip(f"{shown(image.path)}\nDrag to reorder the styles"))

        self.name = ElidedLabel()
        # A file name is shown as it is: never as HTML (a name like "<img src=…>.png" would load that).
        self.name.setTextFormat(Qt.TextFormat.PlainText)
        self.name.set_full_text(shown(image.name))
        self.name.setObjectName("StyleName")
        self.name.setToolTip(plain_tooltip(image.path))
        self.size_label = QLabel(image.size_text)
        self.size_label.setTextFormat(Qt.TextFormat.PlainText)
        self.size_label.setObjectName("Caption")
        self.size_label.setToolTip("Size of the style image in pixels")

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(blend))
        self.slider.setToolTip(
            "Blend: how much of this painting's style goes into the mix. The shares of all styles "
            "add up to 100%; drag a style to 0 to leave it out without removing it."
        )
        self.slider.valueChanged.connect(self.blendChanged)
        self.share = QLabel("100%")
        self.share.setObjectName("Caption")
        self.share.setMinimumWidth(self.share.fontMetrics().horizontalAdvance("100%") + 4)
        self.share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.share.setToolTip("This style's share of the blend")

        self.up = self._tool("up", "Move this style up the list")
        self.down = self._tool("down", "Move this style down the list")
        self.remove = self._tool("remove", "Remove this style")
        self.up.clicked.connect(lambda: self.moveRequested.emit(-1))
        self.down.clicked.connect(lambda: self.moveRequested.emit(1))
        self.remove.clicked.connect(self.removeRequested)

        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.name)
        text.addWidget(self.size_label)
        # In a widget of its own so hiding it (one style: nothing to blend) takes it out of the layout.
        self.blend_box = QWidget()
        blend_row = QHBoxLayout(self.blend_box)
        blend_row.setContentsMargins(0, 0, 0, 0)
        blend_row.setSpacing(4)
        blend_row.addWidget(self.slider, 1)
        blend_row.addWidget(self.share)
        text.addWidget(self.blend_box)

        tools = QVBoxLayout()
        tools.setSpacing(0)
        tools.addWidget(self.up)
        tools.addWidget(self.down)
        tools.addWidget(self.remove)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 4, 6)
        layout.setSpacing(8)
        layout.addWidget(self.thumb)
        layout.addLayout(text, 1)
        layout.addLayout(tools)

    def _tool(self, name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(name))
        button.setIconSize(QSize(14, 14))
        button.setAutoRaise(True)
        button.setToolTip(tip)
        return button

    @property
    def blend(self) -> float:
        return float(self.slider.value())

    def set_share(self, share: float | None, single: bool) -> None:
        self.share.setText("–" if share is None else f"{share * 100:.0f}%")
        # With one style there is nothing to blend; hiding the slider keeps the row calm.
        self.blend_box.setVisible(not single)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        parent = self.parentWidget()
        index = parent.layout().indexOf(self) if parent is not None and parent.layout() is not None else -1
        mime = QMimeData()
        mime.setData(ROW_MIME, QByteArray(str(index).encode()))
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(self.grab().scaledToWidth(min(240, self.width())))
        drag.exec(Qt.DropAction.MoveAction)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._press = None
        super().mouseReleaseEvent(event)


class StyleList(QFrame):
    """Several style images; their blend is normalised to sum to one by the engine."""

    changed = Signal()
    problems = Signal(list)
    addRequested = Signal()  # noqa: N815

    def __init__(self, importer: ImageImporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StyleList")
        self.importer = importer
        self.setAcceptDrops(True)
        self.rows: list[StyleRow] = []

        self.empty = ImageThumb(
            "Drop paintings here\n\nor Add… (Ctrl+Shift+O) or paste (Ctrl+Shift+V).\n"
            "Several styles can be blended.",
            minimum=QSize(200, 150),
        )
        self.empty.setToolTip(
            "Style images: their colours, textures and brush strokes are painted onto the photo. "
            "Add several to blend them."
        )
        self._rows_widget = QWidget()
        self._rows_widget.setObjectName("StyleRows")
        self._rows_layout = QVBoxLayout(self._rows_widget)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(4)
        self._rows_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self._rows_widget)

        self.add_button = self._button("add", "Add…", "Add a painting whose style to use (Ctrl+Shift+O)")
        self.paste_button = self._button(
            "paste", "Paste", "Add the image on the clipboard as a style (Ctrl+Shift+V)"
        )
        self.add_button.clicked.connect(self.addRequested)
        self.paste_button.clicked.connect(self.paste)
        self.summary = QLabel("")
        self.summary.setObjectName("Caption")
        self.summary.setToolTip("How many style images are blended")
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.paste_button)

        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(6)
        layout.addWidget(self.empty, 0, 0)
        layout.addWidget(self.scroll, 0, 0)
        layout.setRowStretch(0, 1)
        layout.addLayout(buttons, 1, 0)
        self._refresh()

    def _button(self, icon_name: str, text: str, tip: str) -> QToolButton:
        return tool_button(icon_name, text, tip)

    # -- model ----------------------------------------------------------------
    def images(self) -> list[ImportedImage]:
        return [row.image for row in self.rows]

    def blend(self) -> tuple[float, ...]:
        return tuple(row.blend for row in self.rows)

    def styles(self) -> list[tuple[ImportedImage, float]]:
        return [(row.image, row.blend) for row in self.rows]

    def add_images(self, images: list[ImportedImage], blends: list[float] | None = None) -> None:
        for position, image in enumerate(images):
            blend = blends[position] if blends is not None and position < len(blends) else DEFAULT_BLEND
            self._insert_row(len(self.rows), image, blend)
        self._refresh()
        self.changed.emit()

    def set_styles(self, styles: list[tuple[ImportedImage, float]]) -> None:
        for row in self.rows:
            self._rows_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []
        for image, blend in styles:
            self._insert_row(len(self.rows), image, blend)
        self._refresh()
        self.changed.emit()

    def replace_image(self, index: int, image: ImportedImage) -> None:
        """After re-validation the file may have changed; keep the row, update its image."""
        row = self.rows[index]
        row.image = image
        row.thumb.set_image(image.preview)
        row.size_label.setText(image.size_text)
        row.name.set_full_text(shown(image.name))
        row.name.setToolTip(plain_tooltip(image.path))

    def remove(self, index: int) -> None:
        row = self.rows.pop(index)
        self._rows_layout.removeWidget(row)
        row.deleteLater()
        self._refresh()
        self.changed.emit()

    def move(self, index: int, target: int) -> None:
        target = max(0, min(len(self.rows) - 1, target))
        if index == target or not 0 <= index < len(self.rows):
            return
        row = self.rows.pop(index)
        self.rows.insert(target, row)
        self._rows_layout.removeWidget(row)
        self._rows_layout.insertWidget(target, row)
        self._refresh()
        self.changed.emit()

    def _insert_row(self, index: int, image: ImportedImage, blend: float) -> None:
        row = StyleRow(image, blend)
        row.blendChanged.connect(self._on_blend)
        row.moveRequested.connect(
            lambda step, r=row: self.move(self.rows.index(r), self.rows.index(r) + step)
        )
        row.removeRequested.connect(lambda r=row: self.remove(self.rows.index(r)))
        self.rows.insert(index, row)
        self._rows_layout.insertWidget(index, row)

    def _on_blend(self) -> None:
        self._refresh()
        self.changed.emit()

    def _refresh(self) -> None:
        has_rows = bool(self.rows)
        self.empty.setVisible(not has_rows)
        self.scroll.setVisible(has_rows)
        total = sum(row.blend for row in self.rows)
        for position, row in enumerate(self.rows):
            row.set_share(row.blend / total if total > 0 else None, single=len(self.rows) == 1)
            row.up.setEnabled(position > 0)
            row.down.setEnabled(position < len(self.rows) - 1)
        count = len(self.rows)
        self.summary.setText("" if count == 0 else "1 style" if count == 1 else f"{count} styles blended")

    # -- input ----------------------------------------------------------------
    def accept_result(self, result: ImportResult) -> None:
        if result.images:
            self.add_images(result.images)
        if result.errors:
            self.problems.emit(list(result.errors))

    def import_mime(self, mime: QMimeData, what: str = "Dropped image") -> None:
        self.accept_result(self.importer.from_mime(mime, what))

    @guarded
    def paste(self) -> None:
        paste_into(self)

    def _drop_index(self, position: QPoint) -> int:
        """Where a dragged row lands: before the first row whose middle is below the pointer."""
        y = self._rows_widget.mapFrom(self, position).y()
        for index, row in enumerate(self.rows):
            if y < row.geometry().center().y():
                return index
        return len(self.rows)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasFormat(ROW_MIME):
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
        elif mime_may_hold_image(mime):
            event.acceptProposedAction()
            self.empty.set_hover(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        if event.mimeData().hasFormat(ROW_MIME):
            event.setDropAction(Qt.DropAction.MoveAction)
        event.accept()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self.empty.set_hover(False)

    @guarded
    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.empty.set_hover(False)
        mime = event.mimeData()
        if mime.hasFormat(ROW_MIME):
            source = int(bytes(mime.data(ROW_MIME).data()).decode() or -1)
            target = self._drop_index(event.position().toPoint())
            if 0 <= source < len(self.rows):
                # Removing the row first shifts the places after it up by one.
                self.move(source, target - 1 if target > source else target)
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
            return
        event.acceptProposedAction()
        self.import_mime(mime)
