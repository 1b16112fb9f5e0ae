"""The studio's room for the picture: collapsible Progress and History panes, canvas only, full screen.

At 1280 x 720 the canvas is what matters: the panes under it fold to their one-line headers (which
keep saying how far the run is and how many runs there are), the divider between the canvas and
the panes can be dragged, and both are remembered. Tab on the picture hides every panel as in
Krita (canvas only), F11 fills the screen.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.settings import Settings

SPLITTER_NAME = "middle"
# The largest useful height of the Progress pane's body: a taller loss chart tells nothing more.
PROGRESS_MAX_HEIGHT = 220


class CollapsiblePane(QWidget):
    """A header (arrow, title, a short summary) over a body that folds away."""

    toggled = Signal(bool)

    def __init__(self, title: str, body: QWidget, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"{title}Pane")
        self.body = body
        self.button = QToolButton()
        self.button.setObjectName("PaneToggle")
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setChecked(True)
        self.button.setArrowType(Qt.ArrowType.DownArrow)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setAutoRaise(True)
        self.button.setToolTip(f"{tip}. Click to fold or unfold.")
        self.button.toggled.connect(self.set_open)
        self.summary = QLabel("")
        self.summary.setObjectName("Caption")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QWidget()
        header.setObjectName("PaneHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(4, 0, 8, 0)
        row.setSpacing(6)
        row.addWidget(self.button)
        row.addWidget(self.summary, 1)
        self.header = header
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(body, 1)

    @property
    def is_open(self) -> bool:
        return self.button.isChecked()

    def header_height(self) -> int:
        return self.header.sizeHint().height()

    def set_open(self, is_open: bool) -> None:
        if self.button.isChecked() != is_open:
            self.button.setChecked(is_open)  # comes back here through toggled
            return
        self.button.setArrowType(Qt.ArrowType.DownArrow if is_open else Qt.ArrowType.RightArrow)
        self.body.setVisible(is_open)
        # Folded, the pane is its header: the splitter cannot hand it room it would leave empty.
        self.setMaximumHeight(16_777_215 if is_open else self.header_height())
        self.toggled.emit(is_open)

    def set_summary(self, text: str) -> None:
        self.summary.setText(text)


class CanvasSplitter(QSplitter):
    """The canvas above, folding panes below; folding gives a pane's room to the canvas and back."""

    def __init__(self, canvas: QWidget, panes: list[CollapsiblePane], parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setObjectName("CanvasSplitter")
        self.canvas = canvas
        self.panes = panes
        self.addWidget(canvas)
        self.setCollapsible(0, False)
        self.setStretchFactor(0, 1)
        self._open_sizes: dict[int, int] = {}
        for index, pane in enumerate(panes, start=1):
            self.addWidget(pane)
            self.setCollapsible(index, False)
            self.setStretchFactor(index, 0)
            pane.toggled.connect(lambda is_open, i=index: self._on_toggled(i, is_open))
        self.setHandleWidth(5)

    def _on_toggled(self, index: int, is_open: bool) -> None:
        sizes = self.sizes()
        pane = self.panes[index - 1]
        if is_open:
            wanted = max(self._open_sizes.get(index, 0), pane.sizeHint().height())
            grow = max(0, wanted - sizes[index])
            sizes[index] += grow
            sizes[0] = max(80, sizes[0] - grow)
        else:
            self._open_sizes[index] = sizes[index]
            freed = sizes[index] - pane.header_height()
            sizes[index] = pane.header_height()
            sizes[0] += max(0, freed)
        self.setSizes(sizes)

    def restore(self, state: object, folded: set[str]) -> None:
        if state is not None:
            self.restoreState(state)  # type: ignore[arg-type]
        for pane in self.panes:
            pane.set_open(pane.objectName() not in folded)


class StudioLayout:
    """Canvas only (Tab on the picture), full screen (F11), and the panes' View menu entries."""

    def __init__(
        self,
        window: QMainWindow,
        splitter: CanvasSplitter,
        side_columns: list[QWidget],
        canvas: QWidget,
        settings: Settings,
        focus: QWidget | None = None,
    ) -> None:
        self.window = window
        self.splitter = splitter
        self.side_columns = side_columns
        self.canvas = canvas
        self.focus = focus or canvas  # what holds the keyboard in canvas only (Tab comes back there)
        self.settings = settings
        self._hidden_by_canvas_only: list[QWidget] = []

        self.pane_actions: list[QAction] = []
        for pane in splitter.panes:
            action = QAction(f"{pane.button.text()} panel", window)
            action.setCheckable(True)
            action.setChecked(pane.is_open)
            action.setToolTip(f"Show or fold the {pane.button.text()} panel under the picture")
            action.toggled.connect(pane.set_open)
            pane.toggled.connect(lambda is_open, a=action: self._sync(a, is_open))
            self.pane_actions.append(action)

        self.canvas_only_action = QAction("Canvas only", window)
        self.canvas_only_action.setCheckable(True)
        self.canvas_only_action.setShortcut("Tab")
        # Tab moves between controls everywhere else; only on the picture does it hide the panels.
        self.canvas_only_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.canvas_only_action.setToolTip(
            "Hide every panel and show only the picture (Tab on the picture, again to bring them back)"
        )
        self.canvas_only_action.toggled.connect(self.set_canvas_only)
        canvas.addAction(self.canvas_only_action)

        self.full_screen_action = QAction("Full screen", window)
        self.full_screen_action.setCheckable(True)
        self.full_screen_action.setShortcut("F11")
        self.full_screen_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.full_screen_action.setToolTip("Fill the screen with the studio (F11)")
        self.full_screen_action.toggled.connect(self.set_full_screen)
        window.addAction(self.full_screen_action)

        self.restore()
        splitter.splitterMoved.connect(lambda _pos, _index: self.remember())
        for pane in splitter.panes:
            pane.toggled.connect(lambda _open: self.remember())

    @staticmethod
    def _sync(action: QAction, is_open: bool) -> None:
        with QSignalBlocker(action):
            action.setChecked(is_open)

    # -- settings -------------------------------------------------------------
    def restore(self) -> None:
        state = self.settings.splitter_state(SPLITTER_NAME)
        folded_state = self.settings.splitter_state(f"{SPLITTER_NAME}_folded")
        folded = (
            set(bytes(folded_state.data()).decode("ascii", "replace").split(",")) if folded_state else set()
        )
        self.splitter.restore(state, folded)

    def remember(self) -> None:
        from PySide6.QtCore import QByteArray

        if self.canvas_only:
            return  # the panes are hidden for the moment, not folded by choice
        self.settings.set_splitter_state(SPLITTER_NAME, self.splitter.saveState())
        folded = ",".join(pane.objectName() for pane in self.splitter.panes if not pane.is_open)
        self.settings.set_splitter_state(f"{SPLITTER_NAME}_folded", QByteArray(folded.encode("ascii")))

    # -- canvas only and full screen -----------------------------------------
    @property
    def canvas_only(self) -> bool:
        return bool(self._hidden_by_canvas_only)

    def _panels(self) -> list[QWidget]:
        window = self.window
        panels: list[QWidget] = [*self.side_columns, *self.splitter.panes]
        panels.extend(bar for bar in window.findChildren(QWidget, "MainToolbar"))
        panels.append(window.statusBar())
        return panels

    def set_canvas_only(self, on: bool) -> None:
        if on == self.canvas_only:
            return
        if on:
            self._hidden_by_canvas_only = [panel for panel in self._panels() if panel.isVisible()]
            for panel in self._hidden_by_canvas_only:
                panel.hide()
            self.focus.setFocus()
        else:
            hidden, self._hidden_by_canvas_only = self._hidden_by_canvas_only, []
            for panel in hidden:
                panel.show()
        self._sync(self.canvas_only_action, on)

    def toggle_canvas_only(self) -> None:
        self.set_canvas_only(not self.canvas_only)

    def set_full_screen(self, on: bool) -> None:
        if on:
            self.window.showFullScreen()
        else:
            self.window.showNormal()
        self._sync(self.full_screen_action, on)

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        for action in self.pane_actions:
            menu.addAction(action)
        menu.addAction(self.canvas_only_action)
        menu.addAction(self.full_screen_action)


def find_menu(window: QMainWindow, title: str) -> QMenu | None:
    """The menu bar's menu whose title (without its & mark) is ``title``."""
    for action in window.menuBar().actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and action.text().replace("&", "") == title:
            return menu
    return None
