"""The style pane: several paintings, each with a blend slider; remove and reorder them."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
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
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.imports import ImageImporter, ImportedImage, ImportResult, plain_tooltip, shown
from ui.masks import REGION_COLOURS
from ui.qtutil import ElidedLabel, guarded, icon, tool_button
from ui.thumbs import ImageThumb, mime_may_hold_image, paste_into

log = logging.getLogger(__name__)

ROW_MIME = "application/x-painterly-style-row"
DEFAULT_BLEND = 100


def normalized_shares(blend: tuple[float, ...]) -> tuple[float, ...]:
    """Each style's share as the engine uses it (StyleJob.normalized_blend), in percent.

    All at zero (only a recipe could say so) is an even blend, as the sliders cannot show "nothing".
    """
    from engine.params import StyleJob

    if not blend:
        return ()
    if sum(blend) <= 0:
        return tuple(100.0 / len(blend) for _ in blend)
    job = StyleJob(Path("photo"), tuple(Path(f"style{i}") for i in range(len(blend))), blend=blend)
    return tuple(100.0 * share for share in job.normalized_blend)


def redistribute(blend: tuple[float, ...], index: int, percent: float) -> tuple[float, ...]:
    """The shares after style ``index`` is set to ``percent``: the others keep their proportions
    and share what is left (evenly when they were all at zero)."""
    percent = max(0.0, min(100.0, percent))
    if len(blend) < 2:
        return (100.0,) * len(blend)
    others = [b for i, b in enumerate(blend) if i != index]
    rest, left = sum(others), 100.0 - percent
    result = []
    for i, b in enumerate(blend):
        if i == index:
            result.append(percent)
        else:
            result.append(b * left / rest if rest > 0 else left / len(others))
    return tuple(result)


class StyleRow(QFrame):
    """One style image: thumbnail, name and size, blend slider, move and remove buttons."""

    moveRequested = Signal(int)  # -1 up, +1 down  # noqa: N815
    removeRequested = Signal()  # noqa: N815
    shareEdited = Signal(float)  # noqa: N815 - the artist set this style's share (percent)

    def __init__(
        self, image: ImportedImage, blend: float = DEFAULT_BLEND, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("StyleRow")
        self.image = image
        # The region this style paints (ui.masks, ui.mask_editor) and the colour that marks it, on this
        # row's edge and on the canvas.
        StyleRow._regions_made += 1
        self.region_id = StyleRow._regions_made
        self.chip = QFrame()
        self.chip.setObjectName("RegionChip")
        self.chip.setFixedWidth(5)
        self.set_colour(REGION_COLOURS[0])
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

        # The slider and the box both show this style's share of the blend, as the engine uses it
        # (StyleJob.normalized_blend): moving one style's share moves the others' to keep 100 % in all.
        tip = (
            "Blend: this painting's share of the style. The shares of all styles add up to 100%: raising "
            "one lowers the others in proportion. At 0 a style is left out without being removed."
        )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.setToolTip(tip)
        self.share = QSpinBox()
        self.share.setObjectName("BlendShare")
        self.share.setRange(0, 100)
        self.share.setSuffix("%")
        self.share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.share.setToolTip(f"{tip} Type a share to set it.")
        self.share.setKeyboardTracking(False)  # "7" on the way to "70" does not move the others
        self._share = float(blend)
        self.show_share(self._share)
        self.slider.valueChanged.connect(lambda value: self.shareEdited.emit(float(value)))
        self.share.valueChanged.connect(lambda value: self.shareEdited.emit(float(value)))

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
        layout.addWidget(self.chip)
        layout.addWidget(self.thumb)
        layout.addLayout(text, 1)
        layout.addLayout(tools)

    _regions_made = 0

    def set_colour(self, colour: str) -> None:
        """The colour of this style's region, shown on the row's left edge."""
        self.colour = QColor(colour)
        self.chip.setStyleSheet(
            f"QFrame#RegionChip {{ background: {self.colour.name()}; border-radius: 2px; }}"
        )
        self.chip.setToolTip("This style's colour where regions are painted (Regions on the photo)")

    def _tool(self, name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(name))
        button.setIconSize(QSize(14, 14))
        button.setAutoRaise(True)
        button.setToolTip(tip)
        return button

    @property
    def blend(self) -> float:
        """This style's share of the blend in percent (all rows add up to 100)."""
        return self._share

    def show_share(self, percent: float) -> None:
        """Show (and hold) a share without saying it was edited."""
        self._share = float(percent)
        for control in (self.slider, self.share):
            control.blockSignals(True)
            control.setValue(round(percent))
            control.blockSignals(False)

    def set_single(self, single: bool) -> None:
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
        """Add styles; without blends each new one gets an even share and the others make room."""
        if not images:
            return
        even = 100.0 / len(self.rows) if self.rows else DEFAULT_BLEND
        for position, image in enumerate(images):
            blend = blends[position] if blends is not None and position < len(blends) else even
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
        row.shareEdited.connect(lambda percent, r=row: self.set_share(self.rows.index(r), percent))
        row.moveRequested.connect(
            lambda step, r=row: self.move(self.rows.index(r), self.rows.index(r) + step)
        )
        row.removeRequested.connect(lambda r=row: self.remove(self.rows.index(r)))
        used = {r.colour.name() for r in self.rows}
        row.set_colour(next((c for c in REGION_COLOURS if c not in used), REGION_COLOURS[len(self.rows) % 8]))
        self.rows.insert(index, row)
        self._rows_layout.insertWidget(index, row)

    def set_share(self, index: int, percent: float) -> None:
        """Give style ``index`` this share of the blend (percent); the others keep their proportions."""
        before = self.blend()
        after = redistribute(before, index, percent)
        for row, share in zip(self.rows, after, strict=True):
            row.show_share(share)
        if after != before:
            self._refresh()
            self.changed.emit()

    def shares(self) -> tuple[float, ...]:
        """Each style's share in percent, exactly as the engine will use it."""
        return normalized_shares(self.blend())

    def _refresh(self) -> None:
        has_rows = bool(self.rows)
        self.empty.setVisible(not has_rows)
        self.scroll.setVisible(has_rows)
        # Whatever came in (a recipe's 0.7/0.3, a new style), the rows hold and show the real shares.
        for row, share in zip(self.rows, self.shares(), strict=True):
            row.show_share(share)
        for position, row in enumerate(self.rows):
            row.set_single(len(self.rows) == 1)
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
