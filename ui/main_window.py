"""The studio's main window: inputs on the left, the painting in the middle, parameters on the right.

The window lays out the widgets and wires them to the run model (``ui.model.RunModel``), which
holds the state: the parameters being edited, the run and its records, the history.  Saving
pictures is ``ui.export``, restoring a job ``ui.recipes``, crash recovery ``ui.recovery``, the
commands and menus ``ui.actions``.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from engine.imageio import load_image
from engine.params import InitMode, Method, StyleJob, StyleParams
from engine.plan import check_output_shape, check_style_shape
from engine.records import Finished, Progress, StopReason
from engine.results import OutputSpec, job_inputs, write_result
from ui.about import AboutDialog
from ui.actions import build_actions
from ui.autosave import AUTOSAVE_INTERVAL, AutosaveStore
from ui.compare import Comparison
from ui.draft import Draft, DraftMaker, DraftStylizeFn
from ui.drops import DropRouter, Target
from ui.export import Exporter
from ui.fields import ENUM_TEXT
from ui.history import HistoryStrip
from ui.image_pane import ContentPane
from ui.imports import (
    ImageImporter,
    ImportedImage,
    check_input_file,
    error_text,
    plain_tooltip,
    printable_lines,
    shown,
)
from ui.message_bar import Level, MessageBar
from ui.model import Frame, HistoryEntry, Inputs, RunModel, RunState
from ui.panels import CanvasSplitter, CollapsiblePane, StudioLayout, find_menu
from ui.param_panel import ParamPanel
from ui.photo_colours import TIP as PHOTO_COLOURS_TIP
from ui.photo_colours import PhotoColours
from ui.progress_panel import ProgressPanel
from ui.prompts import IMAGE_FILTER, WEIGHTS_FILTER, Prompter
from ui.qtutil import describe_exception, format_duration, guarded, icon
from ui.recipes import JobRestorer
from ui.recovery import Recovery
from ui.regions import RegionsController
from ui.result_view import ResultView
from ui.session import Session
from ui.settings import CACHE, DATA, SETTINGS, AppLocations, Settings, storage_banner
from ui.style_list import StyleList
from ui.undo import EditHistory, install_edit_menu
from ui.variations import Variations
from ui.warmup import warm_up
from ui.worker import StylizeFn, Throttle, WeightsFactory

log = logging.getLogger(__name__)

DEFAULT_SIZE = QSize(1400, 900)
# Iterations of a continued run (as the command line's --continue, cli.CONTINUE_ITERATIONS).
CONTINUE_ITERATIONS = 50
DRAFT_STATUS = "Instant draft"
COMPARE_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_C)


def probe_devices() -> list[str]:
    """The usable devices; also gets the engine's slow first-use imports out of the way.

    Runs in a background thread at start-up.  Building the first torch optimiser imports
    torch._dynamo (seconds); done here, the first Run starts painting at once.
    """
    import torch

    from engine.device import available_devices

    devices = [str(choice) for choice in available_devices()]
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
    return devices


class _DeviceProbe(QObject):
    """Finds the usable devices off the GUI thread (it imports torch and may initialise CUDA)."""

    found = Signal(list)
    thread: threading.Thread | None = None

    def start(self, probe: Callable[[], list[str]]) -> None:
        def work() -> None:
            try:
                devices = probe()
            except Exception:  # noqa: BLE001 - without a probe every device stays selectable
                log.exception("probing devices failed")
                return
            try:
                self.found.emit(devices)
            except RuntimeError:
                pass  # the window closed while the probe ran

        self.thread = threading.Thread(target=work, name="painterly-device-probe")
        self.thread.start()

    def wait(self, timeout: float) -> None:
        # Python must not begin shutting down while the probe is still importing torch.
        if self.thread is not None:
            self.thread.join(timeout)


class MainWindow(QMainWindow):
    """All collaborators can be injected, so tests run the real window in isolation."""

    def __init__(
        self,
        *,
        locations: AppLocations | None = None,
        prompter: Prompter | None = None,
        weights_factory: WeightsFactory | None = None,
        stylize: StylizeFn | None = None,
        throttle: Throttle | None = None,
        autosave_interval: float = AUTOSAVE_INTERVAL,
        temp_dirs: list[Path] | None = None,
        device_probe: Callable[[], list[str]] | None = probe_devices,
        restore_settings: bool = True,
        draft_stylize: DraftStylizeFn | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Painterly")
        self.setWindowIcon(icon("painterly"))
        self.setObjectName("MainWindow")
        self.locations = locations or AppLocations.from_environment()
        # Folders that cannot be written (a read-only home) do not stop the studio: settings stay in
        # memory, pasted images go to a temporary folder, and crash recovery is off (said once, below).
        self.storage_problems = self.locations.ensure()
        unusable = {problem.role for problem in self.storage_problems}
        self.settings = Settings(self.locations)
        self.prompter = prompter or Prompter(self)
        self.importer = ImageImporter(self.locations.cache_dir, temp_dirs, cache_usable=CACHE not in unusable)
        self.autosave = AutosaveStore(self.locations.data_dir, autosave_interval)
        self.autosave_enabled = DATA not in unusable
        self.model = RunModel(self, stylize=stylize, weights_factory=weights_factory, throttle=throttle)
        # The instant draft: made in a thread of its own whenever a photo and a style are present.
        self.drafts = DraftMaker(self, stylize=draft_stylize)
        # Show draft was pressed: the next draft may replace the run's picture on view.
        self._draft_asked = False
        self._draft_absence_said = False
        self._content_path: Path | None = None
        # The text of a "Cannot run" banner still on show, so a change of inputs can take it away.
        self._cannot_run_text = ""
        self._probe: _DeviceProbe | None = None
        self._close_pending = False
        self._compare_held: set[int] = set()
        self._continue_fallback: Path | None = None  # where continued pictures go without a cache folder

        warm_up()
        self._build_widgets()
        self.recipes = JobRestorer(
            self.prompter,
            self.settings,
            self.importer,
            self.content_pane,
            self.style_list,
            self.params_panel,
            self.show_message,
            self._update_state,
        )
        self.commands = build_actions(self)
        self._build_studio()
        self.photo_colours = PhotoColours(
            self.result.photo_colors,
            self.result.photo_colors_value,
            self.result.view.set_result,
            lambda text: self.show_message(text, Level.WARNING),
            self,
        )
        self.result.photo_colors_label.setToolTip(PHOTO_COLOURS_TIP)
        self.exporter = Exporter(
            self.model,
            self.prompter,
            self.settings,
            self.locations.cache_dir,
            lambda: self.content_pane.image,
            self.show_message,
            self.statusBar().showMessage,
            adjust=self.photo_colours.adjusted,
        )
        # Where each style goes (ui.regions): painted over the photo, carried by every job.
        self.regions = RegionsController(self)
        self.regions.edited.connect(self._on_regions_edited)
        self._connect()
        self.variations = Variations(self)  # Run > Variations: a grid of settings to choose from
        # Undo and redo follow the model the widgets bind to (ui.undo); the session keeps History,
        # the inputs and the settings between starts (ui.session; run_app restores it).
        self.edits = EditHistory(self.model, self.params_panel.set_params, self._apply_inputs, self)
        self.session = Session(self)
        self.session.install_actions(install_edit_menu(self, self.edits), self.commands.quit)
        # Labels show file names, recipe values and error messages: text from outside, never HTML
        # (Qt would render "<img src=…>" in a name and read that file). No label here is meant as HTML.
        for label in self.findChildren(QLabel):
            label.setTextFormat(Qt.TextFormat.PlainText)
        if restore_settings:
            self._restore_settings()
        else:
            self.resize(DEFAULT_SIZE)
        self._update_state()
        self._report_storage()

        if device_probe is not None:
            # The probe loads the engine in the background; the panel's plan and memory estimate
            # import it too, so they wait for the probe rather than stall the window.
            self.params_panel.defer_estimates()
            self._probe = _DeviceProbe(self)
            self._probe.found.connect(self._on_devices_found)
            self._probe.start(device_probe)

    # ------------------------------------------------------------------ layout
    def _build_widgets(self) -> None:
        self.message_bar = MessageBar()
        self.content_pane = ContentPane(self.importer)
        self.style_list = StyleList(self.importer)
        self.result = ResultView()
        self.progress = ProgressPanel()
        self.history = HistoryStrip()
        self.params_panel = ParamPanel(choose_file=self._choose_param_file)

        # Left: what to paint and how it should look.
        left = QWidget()
        left.setObjectName("LeftColumn")
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(10, 10, 6, 10)
        left_layout.setSpacing(6)
        left_layout.addWidget(self._heading("Photo", "The picture whose shapes are kept"))
        left_layout.addWidget(self.content_pane, 4)
        left_layout.addSpacing(8)
        left_layout.addWidget(self._heading("Styles", "The paintings whose look is painted onto the photo"))
        left_layout.addWidget(self.style_list, 5)
        left.setMinimumWidth(210)

        # Middle: the painting.
        middle = QWidget()
        middle.setObjectName("MiddleColumn")
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.setSpacing(0)
        # The canvas above, the Progress and History panes below: they fold and the divider drags
        # (ui.panels), so the picture gets the height on a small screen.
        canvas = QWidget()
        canvas_layout = QVBoxLayout(canvas)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        canvas_layout.addWidget(self.message_bar)
        canvas_layout.addWidget(self.result, 1)
        self.progress_pane = CollapsiblePane("Progress", self.progress, "How far the run is, and its losses")
        self.history_pane = CollapsiblePane(
            "History", self.history, "Finished and stopped runs of this session"
        )
        self.canvas_splitter = CanvasSplitter(canvas, [self.progress_pane, self.history_pane])
        middle_layout.addWidget(self.canvas_splitter, 1)
        middle.setMinimumWidth(320)

        # Right: parameters, and the buttons that act on them.
        right = QWidget()
        right.setObjectName("RightColumn")
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 10, 10, 10)
        right_layout.setSpacing(8)
        right_layout.addWidget(self.params_panel, 1)
        self.run_button = QPushButton(icon("run"), "  Run")
        self.run_button.setObjectName("RunButton")
        self.run_button.setMinimumHeight(38)
        self.run_button.setToolTip("Start painting the photo in the chosen style (Ctrl+R or Ctrl+Enter)")
        self.stop_button = QPushButton(icon("stop"), "  Stop")
        self.stop_button.setObjectName("StopButton")
        self.stop_button.setMinimumHeight(38)
        self.stop_button.setToolTip("Stop after the current iteration and keep the picture so far (Esc)")
        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.stop_button, 1)
        right_layout.addLayout(buttons)
        self.readiness = QLabel("")
        self.readiness.setObjectName("Caption")
        self.readiness.setWordWrap(True)
        self.readiness.setToolTip("What is still needed before a run can start")
        right_layout.addWidget(self.readiness)
        right.setMinimumWidth(290)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([300, 750, 350])
        self.setCentralWidget(self.splitter)

        self.device_label = QLabel("Device: checking…")
        self.device_label.setToolTip("Where the next run will compute, and the network weights it uses")
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().setSizeGripEnabled(True)

    def _build_studio(self) -> None:
        """Comparing pictures, drops anywhere, and the canvas's room (ui.compare, ui.drops, ui.panels)."""
        self.comparison = Comparison(self.result, self.model, self._current_draft, self)
        self.comparison.install(self)
        self.drops = DropRouter(
            self.importer,
            self.content_pane,
            self.style_list,
            self.show_message,
            self.open_recipe_file,
            self,
            open_session=lambda path: self.session.open_file(path),  # the session is made later
        )
        self.drops.install(self)
        columns = [self.splitter.widget(0), self.splitter.widget(2)]
        self.studio = StudioLayout(
            self, self.canvas_splitter, columns, self.result, self.settings, focus=self.result.view
        )
        view_menu = find_menu(self, "View")
        if view_menu is not None:
            view_menu.addSeparator()
            view_menu.addAction(self.comparison.photo_action)
            view_menu.addAction(self.comparison.flip_action)
            self.studio.add_to_menu(view_menu)
        self.result.view.addActions([self.comparison.photo_action, self.comparison.flip_action])
        self._update_history_summary()

    def _current_draft(self) -> Draft | None:
        """The draft made for the inputs as they are now, if there is one (to compare with)."""
        job = self._draft_job()
        return self.drafts.draft_for(job) if job is not None else None

    @guarded
    def compare_entry_with_photo(self, entry: HistoryEntry) -> None:
        self.view_entry(entry)
        self.comparison.compare_with_photo()

    def _update_history_summary(self) -> None:
        count = len(self.model.history)
        self.history_pane.set_summary("" if not count else "1 run" if count == 1 else f"{count} runs")

    def _heading(self, text: str, tip: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("Heading")
        label.setToolTip(tip)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        return label

    def _connect(self) -> None:
        self.content_pane.imageChanged.connect(self._on_content_changed)
        self.content_pane.problems.connect(self.show_problems)
        self.content_pane.openRequested.connect(self.open_content)
        self.style_list.changed.connect(self._on_styles_changed)
        self.content_pane.imageChanged.connect(lambda _image: self._sync_inputs())
        self.style_list.changed.connect(self._sync_inputs)
        self.style_list.problems.connect(self.show_problems)
        self.style_list.addRequested.connect(self.add_styles)
        self.params_panel.paramsChanged.connect(self._on_params_changed)
        self.params_panel.advanced.toggled.connect(self.settings.set_advanced_open)
        self.run_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop_run)
        self.history.entrySelected.connect(self.view_entry)
        self.history.restoreRequested.connect(self.restore_entry)
        self.history.exportRequested.connect(self.export_entry)
        self.history.continueRequested.connect(self.continue_entry)
        self.history.resumeRequested.connect(self.resume_entry)
        self.history.compareRequested.connect(self.comparison.compare_with_entry)
        self.history.comparePhotoRequested.connect(self.compare_entry_with_photo)
        self.result.view.droppedOn.connect(lambda mime: self.drops.drop(mime, Target.CANVAS))
        self.progress.summaryChanged.connect(self.progress_pane.set_summary)
        self.model.entry_added.connect(lambda _entry: self._update_history_summary())
        self.model.entry_dropped.connect(lambda _entry: self._update_history_summary())
        self.result.draft_button.clicked.connect(self.show_draft)
        self.drafts.ready.connect(self._on_draft)
        self.drafts.failed.connect(self._on_draft_failed)
        self.drafts.unavailable.connect(self._on_draft_unavailable)
        # The widgets follow the model.
        model = self.model
        model.params = self.params_panel.params()
        model.params_changed.connect(self._on_model_params)
        model.state_changed.connect(lambda state: self._update_state())
        model.devices_changed.connect(self._on_devices)
        model.progress_changed.connect(self._on_progress)
        model.frame_changed.connect(self._on_frame)
        model.viewing_changed.connect(self._on_viewing)
        model.draft_changed.connect(self._on_draft_changed)
        model.entry_added.connect(self.history.add_entry)
        model.entry_dropped.connect(self.history.drop_entry)
        model.finished.connect(self._on_finished)
        model.failed.connect(self._on_failed)
        model.ended.connect(self._on_run_ended)

    # --------------------------------------------------------------- messages
    def _report_storage(self) -> None:
        """Say once, at start, what cannot be saved; a status-bar note keeps saying it quietly."""
        self.storage_label: QLabel | None = None
        if not self.storage_problems:
            return
        text = storage_banner(self.storage_problems)
        roles = {problem.role for problem in self.storage_problems}
        note = (
            "Settings not saved"
            if SETTINGS in roles or not self.settings.persistent
            else "Autosave off"
            if DATA in roles
            else "Imports kept temporarily"
        )
        self.storage_label = QLabel(note)
        self.storage_label.setTextFormat(Qt.TextFormat.PlainText)
        self.storage_label.setObjectName("Caption")
        self.storage_label.setToolTip(plain_tooltip(text))
        self.statusBar().addPermanentWidget(self.storage_label)
        self.show_message(text, Level.WARNING)

    def show_message(
        self, text: str, level: Level = Level.INFO, action: tuple[str, Callable[[], None]] | None = None
    ) -> None:
        # Messages carry file names and values from outside: inert before they reach the log or the bar.
        text = printable_lines(text)
        if level is Level.ERROR:
            log.warning("%s", text)
        self.message_bar.show_message(text, level, action)

    def report_exception(self, error: BaseException) -> None:
        """Where ``guarded`` slots and the app's excepthook send what went wrong."""
        self.show_message(describe_exception(error), Level.ERROR)

    def show_problems(self, problems: list[str]) -> None:
        if problems:
            self.show_message("\n".join(problems), Level.ERROR)

    # ------------------------------------------------------------------ state
    @property
    def is_running(self) -> bool:
        return self.model.is_running

    @property
    def available_devices(self) -> list[str] | None:
        return self.model.devices

    def _on_content_changed(self, image: ImportedImage | None) -> None:
        self.params_panel.set_content_size((image.width, image.height) if image else None)
        new_path = image.path if image is not None else None
        changed, self._content_path = new_path != self._content_path, new_path
        if changed and not self.model.is_running:
            # A new photo: the canvas shows it until it is painted, or until its draft is ready
            # (History keeps earlier paintings).
            self.model.view(None)
            self.model.draft = None
            self.history.clear_selection()
            self.result.view.set_result(None)
            self.photo_colours.set_source(None)
            self.result.set_size_text(f"{image.width} × {image.height} px photo" if image else "")
        self.result.view.set_photo(image.preview if image else None)
        if image is not None:
            self.settings.set_last_folder("content", image.path)
        self._clear_stale_cannot_run()
        self._update_state()
        self._update_draft()

    def _on_styles_changed(self) -> None:
        self._clear_stale_cannot_run()
        self._update_state()
        self._update_draft()

    def _sync_inputs(self) -> None:
        self.model.inputs = Inputs(self.content_pane.image, tuple(self.style_list.styles()))

    def _apply_inputs(self, inputs: Inputs) -> None:
        """Undo and redo put the inputs back through the panes, which tell the model."""
        if inputs.content != self.content_pane.image:
            self.content_pane.set_image(inputs.content)
        if list(inputs.styles) != self.style_list.styles():
            self.style_list.set_styles(list(inputs.styles))

    def _on_regions_edited(self) -> None:
        self._clear_stale_cannot_run()
        self._update_draft()

    def _on_params_changed(self, params: StyleParams | None) -> None:
        self.model.params = params
        self._clear_stale_cannot_run()
        self._update_state()
        self._update_draft()

    def _on_model_params(self, params: StyleParams | None) -> None:
        # The controls follow the model: settings made current elsewhere (a variation) show in them.
        if params is not None and params != self.params_panel.last_valid:
            self.params_panel.set_params(params)

    def _on_devices_found(self, devices: list[str]) -> None:
        self.model.devices = devices
        # The engine is loaded: now the draft's networks, before the photo and style arrive. Their first
        # load holds the GIL for about half a second (onnx imports ml_dtypes), so it happens here, in
        # the start-up's background work, rather than while the artist drags a slider.
        self.drafts.warm_up()

    def _on_devices(self, devices: list[str]) -> None:
        self.params_panel.set_available_devices(devices)
        self._update_device_label()

    def _update_device_label(self) -> None:
        params = self.params_panel.last_valid
        available = self.model.devices
        if self.model.last_device:
            device = self.model.last_device
        elif available is None:
            device = "checking…"
        else:
            gpus = [d for d in available if d not in ("auto", "cpu")]
            chosen = ENUM_TEXT.get(str(params.device), str(params.device))
            device = f"{chosen} ({'GPU available' if gpus else 'CPU only'})"
            network = getattr(self.params_panel.memory_plan, "network", "")  # engine.device.network_setup
            device += f", {network}" if network else ""
        self.device_label.setText(f"Device: {shown(device)} · Weights: {shown(params.weights)}")

    def readiness_problem(self) -> str:
        if self.content_pane.image is None:
            return "Add a photo to paint: drop one on the Photo pane or press Ctrl+O."
        if not self.style_list.rows:
            return "Add at least one style painting."
        if sum(self.style_list.blend()) <= 0:
            return "All style blend sliders are at zero: raise at least one."
        if self.model.params is None:
            return f"Fix the settings: {self.params_panel.error}"
        return ""

    def _update_state(self) -> None:
        state = self.model.state
        running = state is not RunState.IDLE
        problem = self.readiness_problem()
        can_run = not running and not problem and not self._close_pending
        commands = self.commands
        self.run_button.setEnabled(can_run)
        commands.run.setEnabled(can_run)
        self.stop_button.setEnabled(state is RunState.RUNNING and not self._close_pending)
        commands.stop.setEnabled(running)
        commands.save_preview.setEnabled(self.result.view.has_result)
        commands.export.setEnabled(
            self.model.export_entry() is not None or self.model.export_draft() is not None
        )
        commands.continue_from.setEnabled(self.model.export_entry() is not None)
        self.result.draft_button.setVisible(
            not running
            and self.model.draft is None
            and self.result.view.has_result
            and self.drafts.available is not False
            and self._draft_job() is not None
        )
        if running:
            self.readiness.setText("Painting… Stop (Esc) keeps the picture so far.")
            self.run_button.setToolTip("A run is in progress")
        elif problem:
            self.readiness.setText(shown(problem))
            self.run_button.setToolTip(plain_tooltip(f"Cannot run yet: {problem}"))
        else:
            size = self.params_panel.output_size()
            text = f"Ready: {size[0]} × {size[1]} px, " if size else "Ready: "
            params = self.params_panel.last_valid
            how = (
                "one pass of the instant network"
                if params.method is Method.INSTANT
                else f"{params.iterations} iterations"
            )
            self.readiness.setText(f"{text}{how}.")
            self.run_button.setToolTip("Start painting the photo in the chosen style (Ctrl+R or Ctrl+Enter)")
        self._update_device_label()

    # -------------------------------------------------------------- open/paste
    @guarded
    def open_content(self) -> None:
        paths = self.prompter.open_images("Open a photo to paint", self.settings.last_folder("content"))
        if not paths:
            return
        try:
            image = self.importer.from_path(paths[0])
        except (InputError, OSError) as error:
            self.show_problems([error_text(error, paths[0].name)])
            return
        self.content_pane.set_image(image)

    @guarded
    def add_styles(self) -> None:
        paths = self.prompter.open_images(
            "Add style paintings", self.settings.last_folder("style"), multiple=True
        )
        if not paths:
            return
        images: list[ImportedImage] = []
        problems: list[str] = []
        for path in paths:
            try:
                images.append(self.importer.from_path(path))
            except (InputError, OSError) as error:
                problems.append(error_text(error, path.name))
        if images:
            self.style_list.add_images(images)
            self.settings.set_last_folder("style", paths[0])
        self.show_problems(problems)

    def _choose_param_file(self, title: str) -> Path | None:
        file_filter = WEIGHTS_FILTER if "weights" in title.lower() else IMAGE_FILTER
        return self.prompter.open_file(
            f"Choose {title.lower()}", self.settings.last_folder("params"), file_filter
        )

    # -------------------------------------------------------------------- run
    def _validated_inputs(self) -> StyleJob | None:
        """Check every input in the GUI thread before a thread starts; show what is wrong, by file."""
        problems: list[str] = []
        content = self.content_pane.image
        if content is None:
            problems.append("No photo: drop one on the Photo pane or press Ctrl+O")
        else:
            try:
                checked = self.importer.revalidate(content)
                if checked is not content:
                    self.content_pane.set_image(checked)
                    content = checked
            except (InputError, OSError) as error:
                problems.append(f"Photo {error_text(error, content.name)}")
        styles: list[ImportedImage] = []
        for index, image in enumerate(self.style_list.images()):
            try:
                checked = self.importer.revalidate(image)
                if checked is not image:
                    self.style_list.replace_image(index, checked)
                styles.append(checked)
            except (InputError, OSError) as error:
                problems.append(f"Style {error_text(error, image.name)}")
        if not self.style_list.rows:
            problems.append("No style: drop a painting on the Styles pane or press Ctrl+Shift+O")
        params = self.model.params
        if params is None:
            problems.append(f"Settings: {self.params_panel.error}")
        else:
            if params.init is InitMode.IMAGE and params.init_image:
                try:
                    check_input_file(Path(params.init_image))  # never open a FIFO or a device
                    load_image(params.init_image)
                except InputError as error:
                    problems.append(f"Start image {error_text(error, Path(params.init_image).name)}")
            uses_network = params.method is Method.INSTANT or params.init is InitMode.DRAFT
            if uses_network and self.drafts.available is False:
                problems.append(f"Instant network: {self.drafts.unavailable_reason}")
            available = self.model.devices
            if available is not None and str(params.device) not in available:
                problems.append(
                    f"Device: {params.device} is not available on this computer; choose Automatic or CPU"
                )
        if content is not None and params is not None:
            # The same shape rules the engine applies, said here before a thread starts.
            try:
                check_output_shape((content.width, content.height), params, content.name)
            except InputError as error:
                problems.append(f"Photo {error_text(error, content.name)}")
            for image in styles:
                try:
                    check_style_shape((image.width, image.height), image.name)
                except InputError as error:
                    problems.append(f"Style {error_text(error, image.name)}")
        if problems or content is None or params is None:
            self._show_cannot_run("Cannot run:\n" + "\n".join(problems))
            return None
        try:
            masks, parts = self.regions.job_masks(), self.regions.job_style_masks()
            paths = tuple(s.path for s in styles)
            return StyleJob(content.path, paths, params, self.style_list.blend(), masks, parts)
        except OSError as error:
            problem = describe_exception(error)
            self._show_cannot_run(f"Cannot run: the painted regions could not be saved ({problem})")
            return None
        except InputError as error:
            self._show_cannot_run(f"Cannot run: {error}")
            return None

    def _show_cannot_run(self, text: str) -> None:
        self.show_message(text, Level.ERROR)
        # What the banner reports is about the inputs as they are now: it goes when they change.
        self._cannot_run_text = self.message_bar.full_text

    def _clear_stale_cannot_run(self) -> None:
        """The inputs changed: a "Cannot run" banner about the old inputs no longer says what is wrong.

        The readiness line under Run keeps saying what (if anything) is still missing.
        """
        text, self._cannot_run_text = self._cannot_run_text, ""
        if text and self.message_bar.text == text:
            self.message_bar.dismiss()

    def _clear_run_messages(self) -> None:
        """A new run starts: the banner about the last run (or the last try) is stale."""
        self._cannot_run_text = ""
        self.message_bar.dismiss()

    @guarded
    def start_run(self) -> None:
        if self.model.is_running or self._close_pending:
            return
        job = self._validated_inputs()
        if job is None:
            return
        self._clear_run_messages()
        # The run's first preview replaces the draft on view; a draft still on its way is not shown.
        self.drafts.cancel()
        self._draft_asked = False
        self.history.clear_selection()
        size = self.params_panel.output_size(job.params)
        if size is not None:
            self.result.view.set_canvas_size(QSize(*size))
            self.result.set_size_text(f"{size[0]} × {size[1]} px")
        self.progress.start(job.params.iterations)
        self.progress.set_status("Loading the network and preparing the images…")
        self.settings.set_last_params(job.params)
        # Without a writable data folder there is no crash recovery: nothing to snapshot into.
        self.model.start(job, snapshotter=self.autosave if self.autosave_enabled else None)
        self.statusBar().showMessage("Painting…")
        self.result.view.setFocus()
        self._update_state()

    @guarded
    def stop_run(self) -> None:
        if self.model.state is RunState.RUNNING:
            self.model.stop()
            self.progress.set_status("Stopping after this iteration…")

    def _on_progress(self, record: Progress | None) -> None:
        if record is None:
            return
        self.progress.show_progress(record)
        if not record.message and record.iteration <= 1:
            self.progress.set_status("")

    def _on_frame(self, frame: Frame | None) -> None:
        if frame is not None and self.model.viewing is None:
            self.photo_colours.set_source(None)
            self.result.view.set_result(frame.image)
            self._update_state()

    @guarded
    def _on_finished(self, finished: Finished) -> None:
        entry = self.model.history[-1]
        image = entry.image
        self.result.view.set_canvas_size(image.size())
        self.result.view.set_result(image)
        self.photo_colours.set_source(entry.finished)
        self.result.set_size_text(f"{image.width()} × {image.height()} px")
        reason = finished.reason
        took = format_duration(finished.seconds)
        # "Stopping after this iteration…" and the engine's last word are over: the run has ended.
        self.progress.set_status("")
        if reason is StopReason.COMPLETED:
            done = (
                "one pass of the instant network"
                if finished.job.params.method is Method.INSTANT
                else f"{finished.iterations} iterations"
            )
            self.progress.finish(f"Done · {done} in {took}", finished.iterations)
            self.statusBar().showMessage(f"Finished run #{entry.number} in {took}", 8000)
        elif reason is StopReason.STOPPED:
            self.progress.finish(f"Stopped at iteration {finished.iterations}")
            self.show_message(
                f"Stopped at iteration {finished.iterations} of {finished.job.params.iterations}. "
                "The picture so far is kept in History; Export saves it.",
                Level.INFO,
                ("Export…", lambda: self.export_entry(entry)),
            )
        elif reason is StopReason.TIME_LIMIT:
            self.progress.finish(f"Time limit · {finished.iterations} iterations")
            self.show_message(
                f"The time limit was reached at iteration {finished.iterations}; "
                "the picture is kept in History.",
                Level.INFO,
            )
        else:
            self.progress.finish(f"Ended early at iteration {finished.iterations}")
            what = (
                "The loss became NaN or infinite" if reason is StopReason.NUMERICAL_ERROR else "Out of memory"
            )
            detail = f": {finished.message}" if finished.message else ""
            self.show_message(
                f"{what}{detail}. The last good picture is kept in History.",
                Level.ERROR,
            )
        self._update_state()

    @guarded
    def _on_failed(self, message: str, kept: HistoryEntry | None) -> None:
        note = ""
        if kept is not None:
            note = f" The last good picture (iteration {kept.finished.iterations}) is kept in History."
        self.progress.finish("Failed")
        self.progress.set_status(message)
        self.show_message(f"The run failed: {message}{note}", Level.ERROR)
        self._update_state()

    def _on_run_ended(self) -> None:
        # Whatever way the run ended, it ended under our control: the crash-safety copy is not needed.
        self.autosave.clear()
        self.statusBar().clearMessage()
        self._update_state()
        if self._close_pending:
            self.close()
            return
        # A run that ended without a picture leaves the draft on view: it follows the inputs again.
        self._update_draft()

    # ------------------------------------------------------------------ draft
    def _draft_job(self) -> StyleJob | None:
        """The inputs as a job the draft can be made from, or None (nothing is checked on disk here:
        the draft thread's engine loads the files and says what is wrong)."""
        content = self.content_pane.image
        styles = self.style_list.images()
        if content is None or not styles:
            return None
        try:
            # The last valid settings: a half-typed weight does not take the draft away.
            params = self.params_panel.last_valid
            masks, parts = self.regions.draft_masks(), self.regions.job_style_masks()
            paths = tuple(s.path for s in styles)
            return StyleJob(content.path, paths, params, self.style_list.blend(), masks, parts)
        except InputError:
            return None  # every blend slider at zero

    def _draft_may_show(self) -> bool:
        """No run is going, and the view holds the photo or the draft, not a run's picture (a
        finished result is never taken from view unasked; Show draft asks)."""
        if self.model.is_running:
            return False
        return self._draft_asked or self.model.draft is not None or not self.result.view.has_result

    def _update_draft(self, delay_ms: int | None = None) -> None:
        """Ask for the draft of the inputs as they are now, or put the draft away when they make none."""
        if self.content_pane.image is not None or self.style_list.rows:
            self.drafts.warm_up()  # the networks load while the second input is being chosen
        job = self._draft_job()
        if job is None:
            self.drafts.cancel()
            if self.model.draft is not None and not self.model.is_running:
                self.model.draft = None
                self.result.view.set_result(None)
                self.photo_colours.set_source(None)
                image = self.content_pane.image
                self.result.set_size_text(f"{image.width} × {image.height} px photo" if image else "")
            return
        if self.drafts.available is False:
            self._say_draft_absent()
            return
        if not self._draft_may_show():
            self.drafts.cancel()
            return
        made = self.drafts.draft_for(job)
        if made is not None:
            self.drafts.cancel()  # back to settings already drafted: what was asked since is stale
            self._show_draft(made)
            return
        self.drafts.request(job, delay_ms)

    @guarded
    def show_draft(self) -> None:
        """Show the draft of the current inputs instead of the picture on view (Show draft)."""
        if self.model.is_running or self._draft_job() is None:
            return
        self._draft_asked = True
        self.model.view(None)
        self.history.clear_selection()
        self._update_draft(delay_ms=0)

    def _on_draft(self, draft: Draft) -> None:
        job = self._draft_job()
        if job is None or not self._draft_may_show() or self.drafts.draft_for(job) is not draft:
            return  # a run's picture took the view, or the inputs changed: kept for Show draft
        self._show_draft(draft)

    def _show_draft(self, draft: Draft) -> None:
        self._draft_asked = False
        self.model.draft = draft

    def _on_draft_changed(self, draft: Draft | None) -> None:
        view = self.result.view
        if draft is None:
            view.set_badge("")
            if self.model.viewing is None:
                self.photo_colours.set_source(None)
            if self.statusBar().currentMessage().startswith(DRAFT_STATUS):
                self.statusBar().clearMessage()
            self._update_state()
            return
        image = draft.image
        view.set_canvas_size(image.size())
        view.set_result(image)
        self.photo_colours.set_source(draft.finished)
        self.result.set_size_text(f"{image.width()} × {image.height()} px · instant draft")
        view.set_badge(
            "Draft",
            "The instant draft: a feed-forward network's picture of the photo in this style, made in "
            "about a second. It follows the photo, the styles and Strength; Run paints the picture "
            "properly, and Export saves this draft with its recipe.",
        )
        self.statusBar().showMessage(
            f"{DRAFT_STATUS} in {draft.seconds:.1f} s: Run (Ctrl+R) paints it properly; "
            "Export saves the draft"
        )
        self._update_state()

    def _on_draft_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"No draft: {printable_lines(message)}", 8000)

    def _on_draft_unavailable(self, message: str) -> None:
        self._update_state()
        if self._draft_job() is not None:
            self._say_draft_absent()

    def _say_draft_absent(self) -> None:
        """Once, when a draft would have appeared (not at start-up, over what the window said then)."""
        if self._draft_absence_said:
            return
        self._draft_absence_said = True
        self.show_message(
            f"No instant draft: {self.drafts.unavailable_reason}. Everything else works as before; "
            "Run paints with the optimisation.",
            Level.INFO,
        )

    # ---------------------------------------------------------------- history
    @guarded
    def view_entry(self, entry: HistoryEntry) -> None:
        self.model.view(entry)

    def _on_viewing(self, entry: HistoryEntry | None) -> None:
        if entry is not None:
            self.drafts.cancel()
            self._draft_asked = False
            self.result.view.set_canvas_size(entry.image.size())
            self.result.view.set_result(entry.image)
            self.photo_colours.set_source(None)  # picked again: shown as it was made
            self.photo_colours.set_source(entry.finished)
            self.result.set_size_text(
                f"{entry.image.width()} × {entry.image.height()} px · run #{entry.number}"
            )
        self._update_state()

    @guarded
    def restore_entry(self, entry: HistoryEntry) -> None:
        self.apply_job(entry.finished.job, f"run #{entry.number}")

    # --------------------------------------------------------------- resume
    @guarded
    def resume_entry(self, entry: HistoryEntry) -> None:
        """Go on with a stopped run where it stopped (its optimiser state is in the entry): the
        run's own job, whatever the panel shows now, ending with the picture it would have made."""
        finished = entry.finished
        if self.model.is_running or self._close_pending or finished.resume is None:
            return
        self._clear_run_messages()
        self.drafts.cancel()
        self.history.clear_selection()
        job = finished.job
        self.progress.start(job.params.iterations)
        self.progress.set_status(f"Resuming run #{entry.number} from iteration {finished.iterations}…")
        snapshotter = self.autosave if self.autosave_enabled else None
        self.model.start(job, snapshotter=snapshotter, resume=finished.resume)
        self.statusBar().showMessage("Painting…")
        self._update_state()

    # --------------------------------------------------------------- continue
    @guarded
    def continue_from_view(self) -> None:
        """Continue from the run on view (a picked history entry, else the newest result)."""
        entry = self.model.export_entry()
        if entry is None:
            self.show_message(
                "Nothing to continue from yet: run first, or pick a run in History.", Level.INFO
            )
            return
        self.continue_entry(entry)

    @guarded
    def continue_entry(self, entry: HistoryEntry) -> Path | None:
        """Set up the entry's job to go on from its picture; the artist may raise Long edge, then Run.

        As the command line's --continue: the same inputs and parameters, starting from the picture
        (written to a file first: the engine reads the start image from disk), one level at the
        output size, 50 iterations. Returns the picture's file, or None when it could not be written.
        """
        finished = entry.finished
        try:
            picture = self._write_continue_picture(entry)
        except (InputError, OSError) as error:
            self.show_message(
                f"Cannot continue from run #{entry.number}: its picture could not be written "
                f"({describe_exception(error)}).",
                Level.ERROR,
            )
            return None
        params = finished.job.params.replace(
            init=InitMode.IMAGE,
            init_image=str(picture),
            coarse_to_fine=False,
            levels=(),
            iterations=CONTINUE_ITERATIONS,
        )
        height, width = finished.image.shape[:2]
        note = (
            f"Ready to continue run #{entry.number} from its picture ({width} × {height} px): "
            f"{CONTINUE_ITERATIONS} more iterations in one level. Raise Long edge to upscale and refine it, "
            "then press Run (Ctrl+R)."
        )
        job = dataclasses.replace(finished.job, params=params)  # its regions go on with it
        self.recipes.apply_job(job, f"run #{entry.number}", note=note)
        return picture

    def _write_continue_picture(self, entry: HistoryEntry) -> Path:
        """The entry's picture as a PNG with its recipe, in the cache folder (else a temporary one).

        The name carries the entry's number and time, so a later session's run #1 never replaces a
        picture that an earlier continued result's recipe names as its start image.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(entry.created))
        name = f"continue-{entry.number}-{stamp}.png"
        finished, inputs = entry.finished, job_inputs(entry.finished.job)
        if self._continue_fallback is None:
            folder = self.locations.cache_dir / "continue"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                return write_result(finished, OutputSpec(folder / name, overwrite=True), inputs=inputs)
            except (InputError, OSError) as error:
                # Read-only, full or gone: this session's temporary folder will do.
                log.warning("cannot keep the continued picture in %s (%s)", folder, error)
                self._continue_fallback = Path(tempfile.mkdtemp(prefix="painterly-continue-"))
        path = self._continue_fallback / name
        return write_result(finished, OutputSpec(path, overwrite=True), inputs=inputs)

    # ----------------------------------------------------------------- saving
    def export_entry(self, entry: HistoryEntry) -> Path | None:
        return self.exporter.export_entry(entry)

    def export_result(self) -> Path | None:
        return self.exporter.export_result()

    def save_preview(self) -> Path | None:
        return self.exporter.save_preview()

    # ---------------------------------------------------------------- recipes
    def open_recipe_file(self, path: Path) -> None:
        self.recipes.open_recipe_file(path)

    def apply_job(self, job: StyleJob, source: str, recipe: dict[str, Any] | None = None) -> None:
        self.recipes.apply_job(job, source, recipe)

    # ------------------------------------------------------------- recovery
    def check_recovery(self) -> bool:
        """Offer what an unclean exit left in the autosave; True when something was restored."""
        show, say = self.result.view.set_result, self.show_message
        return Recovery(self.autosave, self.prompter, self.model, self.apply_job, show, say).check()

    # ------------------------------------------------------------------ about
    def about_details(self) -> tuple[str, str]:
        params = self.params_panel.last_valid
        device = self.model.last_device
        if not device:
            try:
                from engine.device import choose_device

                device = choose_device(params.device).name
            except Exception as error:  # noqa: BLE001 - the About box must open whatever the device state
                device = f"{params.device} ({describe_exception(error)})"
        weights = params.weights
        if self.model.last_weights_id:
            weights = f"{weights} ({self.model.last_weights_id})"
        return device, weights

    @guarded
    def show_about(self) -> AboutDialog:
        device, weights = self.about_details()
        dialog = AboutDialog(device, weights, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.about_dialog = dialog
        return dialog

    # ------------------------------------------------------------- keyboard
    # Hold-to-compare uses key press and release on the window itself: keys reach it only when the
    # focused control does not use them, so typing 'c' in a field or Space on a button still works.
    # (An application-wide event filter would see every event of every object in Python, and
    # PySide6 then builds wrapper types for each new event class on the fly: 0.5 s stalls.)
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if self._is_compare_key(event):
            if not event.isAutoRepeat():
                self.set_compare_key(event.key(), True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if self._is_compare_key(event):
            if not event.isAutoRepeat():
                self.set_compare_key(event.key(), False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    @staticmethod
    def _is_compare_key(event: QKeyEvent) -> bool:
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        return event.key() in COMPARE_KEYS and modifiers == Qt.KeyboardModifier.NoModifier

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        # A key released in another window never reaches us: let go of the comparison.
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow() and self._compare_held:
            self._compare_held.clear()
            self.result.view.set_hold_compare(False)
        super().changeEvent(event)

    def set_compare_key(self, key: int, pressed: bool) -> None:
        if pressed:
            self._compare_held.add(key)
        else:
            self._compare_held.discard(key)
        self.result.view.set_hold_compare(bool(self._compare_held))

    # ------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self._default_geometry()
        splitter = self.settings.splitter_state("main")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        params = self.settings.last_params()
        if params is not None:
            self.params_panel.set_params(params)
        self.params_panel.advanced.set_open(self.settings.advanced_open())

    def _default_geometry(self) -> None:
        screen = QGuiApplication.primaryScreen()
        size = QSize(DEFAULT_SIZE)
        if screen is not None:
            available = screen.availableGeometry()
            size = size.boundedTo(QSize(int(available.width() * 0.95), int(available.height() * 0.92)))
            self.resize(size)
            frame = self.frameGeometry()
            frame.moveCenter(available.center())
            self.move(frame.topLeft())
        else:
            self.resize(size)

    def save_settings(self) -> None:
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_splitter_state("main", self.splitter.saveState())
        self.settings.set_last_params(self.params_panel.last_valid)
        self.settings.set_advanced_open(self.params_panel.advanced.is_open)
        self.settings.sync()

    # ------------------------------------------------------------- closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        # Ctrl+Q and the close button alike: results never exported, or a run, are asked about first.
        if not self._close_pending and not self.session.confirm_close():
            event.ignore()
            return
        if self.model.is_running:
            # Stop cooperatively and close once the thread has ended (see _on_run_ended);
            # blocking here would freeze the window for up to an iteration.
            self._close_pending = True
            self.model.stop()
            self.progress.set_status("Stopping the run; the window closes when the current iteration ends…")
            self._update_state()
            event.ignore()
            return
        self.session.close()
        self.save_settings()
        event.accept()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop any run and wait for its thread (at application exit and in tests)."""
        if self._probe is not None:
            self._probe.wait(timeout_ms / 1000)
        self.drafts.shutdown(timeout_ms / 1000)
        self.variations.shutdown(timeout_ms / 1000)
        if self.model.is_running:
            if not self.model.shutdown(timeout_ms):
                log.error("the run did not stop within %d ms", timeout_ms)
            self.autosave.clear()
        self.session.shutdown()
