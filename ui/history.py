"""History: every finished or stopped run of the session (``RunModel.history``) as a strip of thumbnails."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QKeySequence, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.imports import plain_tooltip
from ui.model import HistoryEntry
from ui.qtutil import icon, thumbnail
from ui.theme import ACCENT

THUMB = QSize(96, 72)


class HistoryList(QListWidget):
    """The thumbnail strip, with a hint while it is empty; Delete (or Backspace) deletes the selection."""

    deletePressed = Signal()  # noqa: N815

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        # Backspace too: the Mac keyboard's "delete" key.
        if event.matches(QKeySequence.StandardKey.Delete) or event.key() == Qt.Key.Key_Backspace:
            self.deletePressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.viewport().rect().adjusted(8, 4, -8, -4),  # wrapped, never cut at the sides
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "Finished and stopped runs appear here, so you can compare, restore and export them",
            )
            painter.end()


class UntintedSelection(QStyledItemDelegate):
    """Marks the selected thumbnail with a frame in the accent colour, never by tinting its picture.

    People compare colours in History: the style's selected look (a highlight overlay on the icon and
    a coloured background) would falsify exactly what they are judging.
    """

    FRAME = 3

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        plain.state &= ~QStyle.StateFlag.State_HasFocus
        super().paint(painter, plain, index)
        if selected:
            painter.save()
            pen = QPen(QColor(ACCENT))
            pen.setWidth(self.FRAME)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            half = self.FRAME // 2
            painter.drawRect(option.rect.adjusted(half, half, -half - 1, -half - 1))
            painter.restore()


class HistoryStrip(QWidget):
    entrySelected = Signal(object)  # HistoryEntry  # noqa: N815
    restoreRequested = Signal(object)  # noqa: N815
    exportRequested = Signal(object)  # noqa: N815
    continueRequested = Signal(object)  # noqa: N815
    deleteRequested = Signal(object)  # noqa: N815 - History's Delete (button, Delete key, menu)
    resumeRequested = Signal(object)  # noqa: N815 - go on with a stopped run where it stopped
    compareRequested = Signal(object)  # noqa: N815 - compare the picture on view with this entry
    comparePhotoRequested = Signal(object)  # noqa: N815 - view this entry beside the photo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HistoryStrip")
        # The entries shown, in the order of the list's rows (the model's history, which it binds to).
        self.entries: list[HistoryEntry] = []
        self.list = HistoryList()
        self.list.setObjectName("HistoryList")
        self.list.setItemDelegate(UntintedSelection(self.list))
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setIconSize(THUMB)
        self.list.setSpacing(4)
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemClicked.connect(self._on_clicked)
        self.list.currentRowChanged.connect(self._on_row)
        self.list.setToolTip(
            "Every finished or stopped run of this session. Click one to view it; right-click to restore "
            "its settings, continue from its picture or export it."
        )
        self.list.setFixedHeight(THUMB.height() + self.fontMetrics().height() + 34)

        self.restore_button = self._tool(
            "restore", "Restore the selected run's settings and inputs into the panel", "Restore"
        )
        self.continue_button = self._tool(
            "run",
            "Continue from the selected run's picture: its settings, starting from its picture, 50 more "
            "iterations in one level. Raise Long edge first to upscale and refine, then Run.",
            "Continue",
        )
        self.continue_button.setObjectName("ContinueButton")
        self.export_button = self._tool(
            "export", "Export the selected run to a file with its recipe", "Export…"
        )
        self.restore_button.clicked.connect(lambda: self._emit(self.restoreRequested))
        self.export_button.clicked.connect(lambda: self._emit(self.exportRequested))
        self.continue_button.clicked.connect(lambda: self._emit(self.continueRequested))
        delete_tip = (
            "Delete the selected run from History and from the kept session (Delete). A file you "
            "exported stays where it is."
        )
        self.delete_button = QToolButton()
        self.delete_button.setObjectName("DeleteEntryButton")
        self.delete_button.setIcon(icon("remove"))
        self.delete_button.setText("Delete")
        self.delete_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.delete_button.setAutoRaise(True)
        self.delete_button.setToolTip(delete_tip)
        self.delete_button.clicked.connect(lambda: self._emit(self.deleteRequested))
        self.list.deletePressed.connect(lambda: self._emit(self.deleteRequested))
        tools = QVBoxLayout()
        tools.setSpacing(2)
        tools.addWidget(self.restore_button)
        tools.addWidget(self.continue_button)
        tools.addWidget(self.export_button)
        tools.addWidget(self.delete_button)
        tools.addStretch(1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.list, 1)
        layout.addLayout(tools)
        self._update_buttons()

    def _tool(self, name: str, tip: str, text: str = "") -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(name))
        if text:
            # Words beside the icons: three look-alike glyphs in a column said nothing on their own.
            button.setText(text)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        button.setAutoRaise(True)
        button.setToolTip(tip)
        return button

    def add_entry(self, entry: HistoryEntry) -> None:
        """Show a new entry of the model's history, selected (without signalling the selection)."""
        self.entries.append(entry)
        pixmap = thumbnail(entry.thumbnail_source, THUMB, self.devicePixelRatioF())
        picture = QIcon(pixmap)
        # The same pixels in every mode: a selected or hovered thumbnail is never tinted.
        picture.addPixmap(pixmap, QIcon.Mode.Selected)
        picture.addPixmap(pixmap, QIcon.Mode.Active)
        item = QListWidgetItem(picture, entry.title)
        item.setToolTip(plain_tooltip(entry.details))
        item.setData(Qt.ItemDataRole.UserRole, entry.number)
        item.setSizeHint(QSize(THUMB.width() + 44, THUMB.height() + self.fontMetrics().height() + 14))
        self.list.addItem(item)
        self.list.blockSignals(True)
        self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.list.scrollToItem(item)
        self._update_buttons()

    def drop_entry(self, entry: HistoryEntry) -> None:
        """Let go of an entry the model's history no longer holds."""
        for row, shown in enumerate(self.entries):
            if shown is entry:
                self.entries.pop(row)
                self.list.takeItem(row)
                break
        self._update_buttons()

    def current(self) -> HistoryEntry | None:
        row = self.list.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def select(self, index: int) -> None:
        self.list.setCurrentRow(index)

    def clear_selection(self) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        self.list.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.current() is not None
        self.restore_button.setEnabled(has)
        self.export_button.setEnabled(has)
        self.continue_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if 0 <= row < len(self.entries):
            self.entrySelected.emit(self.entries[row])
        self._update_buttons()

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            self.entrySelected.emit(self.entries[row])
        self._update_buttons()

    def _emit(self, signal: Signal) -> None:
        entry = self.current()
        if entry is not None:
            signal.emit(entry)  # type: ignore[attr-defined]

    def _menu(self, position: QPoint) -> None:
        item = self.list.itemAt(position)
        if item is None:
            return
        where = self.list.viewport().mapToGlobal(position)
        self.context_menu(self.entries[self.list.row(item)]).exec(where)

    def context_menu(self, entry: HistoryEntry) -> QMenu:
        """The right-click menu of an entry."""
        menu = QMenu(self)
        menu.addAction(icon("view"), "View", lambda: self.entrySelected.emit(entry))
        menu.addAction(
            icon("restore"), "Restore settings and inputs", lambda: self.restoreRequested.emit(entry)
        )
        if entry.finished.resume is not None:
            resume = menu.addAction(
                icon("run"), "Resume where it stopped", lambda: self.resumeRequested.emit(entry)
            )
            resume.setToolTip(
                f"Go on from iteration {entry.finished.iterations} exactly as if the run had not been "
                "stopped: the same picture it would have finished with"
            )
        menu.addAction(icon("run"), "Continue from this", lambda: self.continueRequested.emit(entry))
        menu.addAction(icon("export"), "Export…", lambda: self.exportRequested.emit(entry))
        menu.addAction(icon("remove"), "Delete", lambda: self.deleteRequested.emit(entry))
        menu.addSeparator()
        menu.addAction("Compare with the picture on view", lambda: self.compareRequested.emit(entry))
        menu.addAction("View beside the photo", lambda: self.comparePhotoRequested.emit(entry))
        return menu
