"""Variations in the window: a grid of small pictures of the photo under different settings.

Run ▸ Variations (Ctrl+G, and on the toolbar) checks the inputs as Run does, chooses the settings
(engine.variations.choose_variations: the current ones, then strength, brush, colours, a By-look
preset and a noisy start with its own seed, in turn) and paints them small, one after another, in a
thread of its own (``VariationsWorker``, the pattern of ui.worker.StyleWorker: the engine's
generator driven on a QThread, each record passed on untouched through one ``Signal(object)``,
pictures made into QImages in that thread). Each tile appears in the dialog as it is done, with
its label. Clicking a tile makes its settings the current ones through the run model (the window's
controls follow the model); "Paint this at full size" then runs them as Run would.

Only one thing computes at a time: the grid stops when a run starts, and "Paint this at full size"
stops it first and starts the run when its thread has ended.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from engine.params import StyleJob
from engine.text import printable
from engine.variations import (
    TILE_ITERATIONS,
    TILE_SIZE,
    Tile,
    TileProgress,
    Variation,
    VariationsFinished,
    choose_variations,
    describe,
    render_variations,
)
from ui.actions import make_action
from ui.qtutil import describe_exception, guarded
from ui.worker import (
    Pictures,
    StylizeFn,
    Throttle,
    WeightsFactory,
    lower_this_thread_priority,
    use_every_core,
)

if TYPE_CHECKING:
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)

# Eight tiles: the current settings and one of each kind of change, with strength and brush twice.
VARIATIONS_COUNT = 8
SHORTCUT = "Ctrl+G"
PAINT_TEXT = "Paint this at full size"


class VariationsWorker(QObject):
    """Paints one grid; lives in its own QThread, ``run`` connected to ``QThread.started``."""

    # TileProgress (a few a second), each Tile, then the VariationsFinished: untouched.
    record = Signal(object)
    # The grid could not be painted: one line for the window.
    failed = Signal(str)
    # The thread's work is over, whichever way it ended.
    done = Signal()

    def __init__(
        self,
        job: StyleJob,
        variations: list[Variation],
        *,
        size: int,
        iterations: int,
        pictures: Pictures,
        stylize: StylizeFn | None = None,
        weights_factory: WeightsFactory | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__()
        self.job, self.variations = job, variations
        self.size, self.iterations = size, iterations
        self.pictures = pictures
        self._stylize = stylize
        self._weights_factory = weights_factory
        self.throttle = throttle or Throttle()
        self._stop = threading.Event()
        self._abort = threading.Event()

    def stop(self) -> None:
        """End within an iteration; the tiles made so far stay."""
        self._stop.set()

    def abort(self) -> None:
        """Stop and pass nothing more on (the window is closing)."""
        self._abort.set()
        self._stop.set()

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except InputError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - every failure must reach the window as a message
            log.exception("painting the variations failed")
            self.failed.emit(describe_exception(error))
        finally:
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())  # so deleteLater() in the GUI thread can free it
            self.done.emit()

    def _run(self) -> None:
        if self.throttle.tune_threads:  # as a run's worker does (ui.worker.StyleWorker)
            use_every_core()
            lower_this_thread_priority()
        weights = self._weights_factory() if self._weights_factory is not None else None
        records = render_variations(
            self.job,
            self.variations,
            size=self.size,
            iterations=self.iterations,
            should_stop=self._stop.is_set,
            weights=weights,
            stylize=self._stylize,
        )
        last_progress = -float("inf")
        try:
            for record in records:
                if self._abort.is_set():
                    break
                if isinstance(record, TileProgress):
                    now = time.monotonic()
                    if now - last_progress < self.throttle.progress:
                        continue
                    last_progress = now
                elif isinstance(record, Tile):
                    self.pictures.make(record.finished)  # the QImage is made here, not in the GUI thread
                self.record.emit(record)
        finally:
            records.close()


class VariationsDialog(QDialog):
    """The grid: a tile per variation, filled in as each is painted; click one to choose it."""

    chosen = Signal(object)  # Variation: a tile was clicked
    paintRequested = Signal(object)  # Variation: "Paint this at full size"  # noqa: N815
    againRequested = Signal()  # noqa: N815
    stopRequested = Signal()  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VariationsDialog")
        self.setWindowTitle("Variations")
        self.setModal(False)
        self.variations: list[Variation] = []
        self.tiles: list[QToolButton] = []
        self.made: dict[int, Tile] = {}
        self.tile_size = TILE_SIZE
        self.intro = QLabel(
            "The photo painted small under different settings. Click a picture to make its settings "
            "the current ones; the controls follow."
        )
        self.intro.setWordWrap(True)
        self.grid_widget = QWidget()
        self.grid = QGridLayout(self.grid_widget)
        self.grid.setSpacing(8)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self._on_clicked)
        self.status = QLabel("")
        self.status.setObjectName("Caption")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.paint_button = QPushButton(PAINT_TEXT)
        self.paint_button.setObjectName("RunButton")
        self.paint_button.setToolTip("Run the chosen picture's settings at the full output size, as Run does")
        self.paint_button.setEnabled(False)
        self.paint_button.clicked.connect(self._on_paint)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop painting the variations; the pictures made so far stay")
        self.stop_button.clicked.connect(self.stopRequested)
        self.again_button = QPushButton("Paint again")
        self.again_button.setToolTip("Paint the variations again from the current photo, styles and settings")
        self.again_button.clicked.connect(self.againRequested)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.paint_button, QDialogButtonBox.ButtonRole.AcceptRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.grid_widget, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        # A chosen tile is framed in the accent colour; a tile not painted yet is greyed.
        self.setStyleSheet(
            "QToolButton#VariationTile { border: 2px solid transparent; border-radius: 4px; padding: 4px; }"
            "QToolButton#VariationTile:checked { border-color: #e39a3b; background: #3a3226; }"
            "QToolButton#VariationTile:hover:enabled { background: #38383b; }"
        )

    # ------------------------------------------------------------------ grid
    def begin(self, variations: list[Variation], tile_size: int) -> None:
        """A fresh grid of placeholders, one per variation."""
        for button in self.tiles:
            self.group.removeButton(button)
            self.grid.removeWidget(button)
            button.deleteLater()
        self.variations, self.tiles, self.made = list(variations), [], {}
        self.tile_size = tile_size
        columns = 4 if len(variations) in (7, 8) else 3 if len(variations) > 4 else 2
        blank = QPixmap(tile_size, tile_size * 3 // 4)
        blank.fill(QColor("#3a3a3d"))
        for index, variation in enumerate(variations):
            button = QToolButton()
            button.setObjectName("VariationTile")
            button.setCheckable(True)
            button.setEnabled(False)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(tile_size, tile_size))
            button.setIcon(QIcon(blank))
            button.setText(self._fitted(button, variation.label))
            button.setToolTip(f"{variation.label}: waiting to be painted")
            self.group.addButton(button, index)
            self.grid.addWidget(button, index // columns, index % columns)
            self.tiles.append(button)
        self.paint_button.setEnabled(False)
        self.progress.setRange(0, 1000 * len(variations))
        self.progress.setValue(0)
        self.set_running(True)
        self.status.setText(f"Painting {len(variations)} variations, one after another…")

    def _fitted(self, button: QToolButton, text: str) -> str:
        """``text`` shortened with an ellipsis to the tile's width (the tooltip has it whole), so one
        long label ("Noisy start, seed 3246093992") does not widen its column of the grid."""
        metrics = button.fontMetrics()
        return metrics.elidedText(text, Qt.TextElideMode.ElideRight, max(self.tile_size + 8, 150))

    def set_running(self, running: bool) -> None:
        self.stop_button.setVisible(running)
        self.stop_button.setEnabled(running)
        self.again_button.setVisible(not running)
        self.progress.setVisible(running)

    def show_progress(self, record: TileProgress) -> None:
        self.progress.setValue(int(1000 * (record.index + record.progress.fraction)))
        self.status.setText(
            f"Painting {record.index + 1} of {record.count}: {record.variation.label} "
            f"(iteration {record.progress.iteration} of {record.progress.total})"
        )

    def show_tile(self, tile: Tile, image: QImage) -> None:
        button = self.tiles[tile.index]
        self.made[tile.index] = tile
        button.setIcon(QIcon(QPixmap.fromImage(image)))
        button.setIconSize(image.size())
        button.setEnabled(True)
        finished = tile.finished
        ended = "" if finished.completed else f" ({finished.reason.value.replace('_', ' ')})"
        button.setText(self._fitted(button, tile.variation.label + ended))
        button.setToolTip(
            f"{tile.variation.label}{ended}\n{describe(tile.variation.params)}\n"
            f"{finished.iterations} iterations in {finished.seconds:.1f} s. "
            "Click to make these settings current."
        )
        self.progress.setValue(1000 * (tile.index + 1))

    def finish(self, result: VariationsFinished) -> None:
        self.set_running(False)
        made = len(result.tiles)
        if result.completed:
            self.status.setText(
                f"{made} variations in {result.seconds:.0f} s. Click one to make its settings current."
            )
        else:
            self.status.setText(f"Stopped: {made} of {result.count} variations painted.")

    def fail(self, message: str) -> None:
        self.set_running(False)
        self.status.setText(f"The variations could not be painted: {printable(message)}")

    def set_stale(self) -> None:
        """The photo or the styles changed: the tiles no longer show them."""
        for button in self.tiles:
            button.setEnabled(False)
        self.paint_button.setEnabled(False)
        self.status.setText("The photo or the styles changed since: Paint again to see them.")

    @property
    def selected(self) -> Variation | None:
        index = self.group.checkedId()
        return self.variations[index] if 0 <= index < len(self.variations) and index in self.made else None

    def click_tile(self, index: int) -> None:
        """As a click on tile ``index`` (for tests and the keyboard)."""
        self.tiles[index].click()

    def _on_clicked(self, index: int) -> None:
        if index in self.made:
            self.paint_button.setEnabled(True)
            self.chosen.emit(self.variations[index])

    def _on_paint(self) -> None:
        variation = self.selected
        if variation is not None:
            self.paintRequested.emit(variation)


class Variations(QObject):
    """The window's Variations command: the action, the dialog and the thread that paints the grid."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.count = VARIATIONS_COUNT
        self.tile_size = TILE_SIZE
        self.tile_iterations = TILE_ITERATIONS
        self.dialog: VariationsDialog | None = None
        self.job: StyleJob | None = None
        self._thread: QThread | None = None
        self._worker: VariationsWorker | None = None
        self._pictures = Pictures()
        self._paint_when_stopped: Variation | None = None
        self._stale = False  # the inputs changed while the grid was being painted
        self.action = make_action(
            window,
            "Variations…",
            "Paint the photo small under several different settings, to choose from",
            self.start,
            [SHORTCUT],
            "variations",
        )
        self._install(self.action)
        model = window.model
        model.state_changed.connect(self._on_run_state)
        model.params_changed.connect(lambda params: self.update_action())
        window.content_pane.imageChanged.connect(self._on_inputs_changed)
        window.style_list.changed.connect(self._on_inputs_changed)
        self.update_action()

    def _install(self, action: QAction) -> None:
        """In the Run menu after its last entry, and on the toolbar after Export."""
        window = self.window
        for menu_action in window.menuBar().actions():
            if menu_action.menu() is not None and menu_action.text().replace("&", "") == "Run":
                menu_action.menu().addSeparator()
                menu_action.menu().addAction(action)
                break
        toolbar = window.findChild(QToolBar, "MainToolbar")
        if toolbar is None:
            return
        actions = toolbar.actions()
        export = window.commands.export
        after = actions[actions.index(export) + 1] if export in actions[:-1] else None
        if after is None:
            toolbar.addAction(action)
        else:
            toolbar.insertSeparator(after)
            toolbar.insertAction(after, action)

    # ------------------------------------------------------------------ state
    @property
    def is_painting(self) -> bool:
        return self._thread is not None

    def update_action(self) -> None:
        window = self.window
        ready = not window.model.is_running and not window.readiness_problem()
        self.action.setEnabled(ready and not self.is_painting)

    def _on_run_state(self, state: Any) -> None:
        if self.window.model.is_running and self.is_painting:
            self.stop()  # one computation at a time: the run has the device
        self.update_action()

    def _on_inputs_changed(self, *args: Any) -> None:
        self.update_action()
        if self.dialog is not None and self.dialog.variations and not self.is_painting:
            self.dialog.set_stale()
        elif self.is_painting:
            self.stop()
            self._stale = True

    # ------------------------------------------------------------------ start
    @guarded
    def start(self) -> None:
        window = self.window
        if self.is_painting or window.model.is_running:
            return
        job = window._validated_inputs()  # every input checked as Run does, said in the window
        if job is None:
            return
        try:
            variations = choose_variations(
                job.params, self.count, instant_available=window.drafts.available is not False
            )
        except InputError as error:
            window.show_problems([str(error)])
            return
        self._stale = False
        self.job = job
        dialog = self._ensure_dialog()
        dialog.begin(variations, self.tile_size)
        dialog.show()
        dialog.raise_()
        thread = QThread()
        thread.setObjectName("painterly-variations")
        model = window.model
        worker = VariationsWorker(
            job,
            variations,
            size=self.tile_size,
            iterations=self.tile_iterations,
            pictures=self._pictures,
            stylize=model.stylize,
            weights_factory=model.weights_factory,
            throttle=model.throttle,
        )
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.record.connect(self._on_record)
        worker.failed.connect(self._on_failed)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        thread.start()
        self.update_action()

    def _ensure_dialog(self) -> VariationsDialog:
        if self.dialog is None:
            dialog = VariationsDialog(self.window)
            dialog.chosen.connect(self.make_current)
            dialog.paintRequested.connect(self.paint)
            dialog.againRequested.connect(self.start)
            dialog.stopRequested.connect(self.stop)
            dialog.rejected.connect(self.stop)
            self.dialog = dialog
        return self.dialog

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the grid and wait for its thread (the window is closing)."""
        self._paint_when_stopped = None
        thread, worker = self._thread, self._worker
        if worker is not None:
            worker.abort()
        if thread is not None and thread.wait(int(timeout * 1000)):
            self._on_thread_finished()

    # ---------------------------------------------------------------- records
    @Slot(object)
    def _on_record(self, record: Any) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        if isinstance(record, TileProgress):
            dialog.show_progress(record)
        elif isinstance(record, Tile):
            dialog.show_tile(record, self._pictures.take(record.finished))
        elif isinstance(record, VariationsFinished):
            dialog.finish(record)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.dialog is not None:
            self.dialog.fail(message)
        self.window.show_problems([f"Variations: {message}"])

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return
        self._thread = self._worker = None
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()
        self._pictures.clear()
        if self._stale and self.dialog is not None:
            self.dialog.set_stale()
        self.update_action()
        variation, self._paint_when_stopped = self._paint_when_stopped, None
        if variation is not None:
            self.paint(variation)

    # ------------------------------------------------------------- choosing
    def make_current(self, variation: Variation) -> None:
        """The tile's settings become the current ones: set on the model, which the controls follow."""
        self.window.model.params = variation.params

    @guarded
    def paint(self, variation: Variation) -> None:
        """Make the tile's settings current and run them at full size (after the grid has stopped)."""
        self.make_current(variation)
        if self.is_painting:
            self._paint_when_stopped = variation
            self.stop()
            if self.dialog is not None:
                self.dialog.status.setText("Stopping the variations, then painting the chosen one…")
            return
        if self.dialog is not None:
            self.dialog.hide()
        self.window.start_run()

    def report_exception(self, error: BaseException) -> None:
        self.window.report_exception(error)
