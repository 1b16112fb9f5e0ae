"""The studio's main window: inputs on the left, the painting in the middle, parameters on the right."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QImage, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.encode import OUTPUT_FORMATS
from engine.errors import InputError, OutputExistsError
from engine.files import safe_exists
from engine.imageio import load_image
from engine.metadata import read_recipe, sidecar_path
from engine.params import InitMode, StyleJob, StyleParams
from engine.recipe import job_from_recipe
from engine.records import Finished, StopReason
from engine.results import OutputSpec, SaveError, check_output, job_inputs, save_result
from ui.about import AboutDialog
from ui.autosave import AUTOSAVE_INTERVAL, AutosaveStore, snapshot_finished
from ui.fields import ENUM_TEXT
from ui.history import HistoryEntry, HistoryStrip
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
from ui.param_panel import ParamPanel
from ui.progress_panel import ProgressPanel
from ui.prompts import EXPORT_FORMATS, IMAGE_FILTER, RECIPE_FILTER, WEIGHTS_FILTER, Prompter
from ui.qtutil import describe_exception, format_duration, guarded, icon, qimage_to_rgb, rgb_to_qimage
from ui.result_view import ResultView
from ui.settings import CACHE, DATA, SETTINGS, AppLocations, Settings, storage_banner
from ui.style_list import StyleList
from ui.warmup import warm_up
from ui.worker import RunController, StylizeFn, Throttle, WeightsFactory

log = logging.getLogger(__name__)

DEFAULT_SIZE = QSize(1400, 900)
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
        self.controller = RunController(
            self, stylize=stylize, weights_factory=weights_factory, throttle=throttle
        )
        self.available_devices: list[str] | None = None
        self._content_path: Path | None = None
        self._probe: _DeviceProbe | None = None

        # Run state.
        self._run_job: StyleJob | None = None
        self._run_started = 0.0
        self._frame: QImage | None = None
        self._frame_iteration = 0
        self._frame_elapsed = 0.0
        self._frame_losses: dict[str, float] = {}
        self._result_image: QImage | None = None
        self._close_pending = False
        self._viewing: HistoryEntry | None = None
        self._compare_held: set[int] = set()
        self.last_device = ""
        self.last_weights_id = ""

        warm_up()
        self._build_widgets()
        self._build_actions()
        self._connect()
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
            self._probe.found.connect(self._on_devices)
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
        middle_layout.addWidget(self.message_bar)
        middle_layout.addWidget(self.result, 1)
        separator = QFrame()
        separator.setObjectName("Separator")
        separator.setFixedHeight(1)
        middle_layout.addWidget(separator)
        middle_layout.addWidget(self.progress)
        history_title = self._heading("History", "Finished and stopped runs of this session")
        history_title.setContentsMargins(8, 2, 8, 0)
        middle_layout.addWidget(history_title)
        middle_layout.addWidget(self.history)
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

    def _heading(self, text: str, tip: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("Heading")
        label.setToolTip(tip)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        return label

    def _action(
        self,
        text: str,
        tip: str,
        slot: Callable[[], Any],
        shortcuts: list[QKeySequence | str] | QKeySequence.StandardKey | None = None,
        icon_name: str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if isinstance(shortcuts, QKeySequence.StandardKey):
            action.setShortcut(shortcuts)
        elif shortcuts:
            action.setShortcuts([QKeySequence(s) if isinstance(s, str) else s for s in shortcuts])
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
        action.setToolTip(f"{tip} ({keys})" if keys else tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.open_action = a(
            "Open photo…",
            "Choose the photo to paint",
            self.open_content,
            QKeySequence.StandardKey.Open,
            "open",
        )
        self.add_style_action = a(
            "Add style…", "Add paintings whose style to use", self.add_styles, ["Ctrl+Shift+O"], "add"
        )
        self.paste_action = a(
            "Paste photo",
            "Use the clipboard's image as the photo",
            self.content_pane.paste,
            QKeySequence.StandardKey.Paste,
            "paste",
        )
        self.paste_style_action = a(
            "Paste style",
            "Add the clipboard's image as a style",
            self.style_list.paste,
            ["Ctrl+Shift+V"],
            "paste",
        )
        self.open_recipe_action = a(
            "Open recipe from image…",
            "Restore every setting and the inputs from an image Painterly saved",
            self.open_recipe,
            ["Ctrl+Shift+R"],
            "recipe",
        )
        self.save_preview_action = a(
            "Save preview…",
            "Save the picture shown now, with its recipe",
            self.save_preview,
            QKeySequence.StandardKey.Save,
            "save",
        )
        self.export_action = a(
            "Export…",
            "Export the result as PNG, JPEG, WebP or TIFF with its recipe",
            self.export_result,
            ["Ctrl+E"],
            "export",
        )
        self.quit_action = a("Quit", "Close Painterly", self.close, QKeySequence.StandardKey.Quit)
        self.run_action = a(
            "Run", "Start painting", self.start_run, ["Ctrl+R", "Ctrl+Return", "Ctrl+Enter"], "run"
        )
        self.stop_action = a("Stop", "Stop and keep the picture so far", self.stop_run, ["Esc"], "stop")
        self.fit_action = a(
            "Fit", "Fit the picture in the view", self.result.view.fit, ["Ctrl+0"], "zoom-fit"
        )
        self.actual_action = a(
            "Actual pixels",
            "One picture pixel per screen pixel",
            self.result.view.actual_pixels,
            ["Ctrl+1"],
            "zoom-100",
        )
        self.zoom_in_action = a(
            "Zoom in",
            "Magnify the picture",
            lambda: self.result.view.zoom_by(1.25),
            QKeySequence.StandardKey.ZoomIn,
        )
        self.zoom_out_action = a(
            "Zoom out",
            "Shrink the picture",
            lambda: self.result.view.zoom_by(0.8),
            QKeySequence.StandardKey.ZoomOut,
        )
        self.new_seed_action = a(
            "New seed", "Pick a random seed for another variation", self._new_seed, ["Ctrl+Shift+N"], "dice"
        )
        self.about_action = a(
            "About Painterly", "Versions, device and network weights", self.show_about, ["F1"], "about"
        )

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for action in (self.open_action, self.add_style_action, self.paste_action, self.paste_style_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.open_recipe_action)
        file_menu.addSeparator()
        file_menu.addAction(self.save_preview_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = menu.addMenu("&Run")
        run_menu.addAction(self.run_action)
        run_menu.addAction(self.stop_action)
        run_menu.addSeparator()
        run_menu.addAction(self.new_seed_action)
        view_menu = menu.addMenu("&View")
        for action in (self.fit_action, self.actual_action, self.zoom_in_action, self.zoom_out_action):
            view_menu.addAction(action)
        view_menu.addSeparator()
        compare = view_menu.addAction("Hold Space or C to compare with the photo")
        compare.setEnabled(False)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.about_action)

        toolbar = QToolBar("Main")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.open_action, self.add_style_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.open_recipe_action)
        toolbar.addSeparator()
        toolbar.addAction(self.save_preview_action)
        toolbar.addAction(self.export_action)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(self.about_action)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _connect(self) -> None:
        self.content_pane.imageChanged.connect(self._on_content_changed)
        self.content_pane.problems.connect(self.show_problems)
        self.content_pane.openRequested.connect(self.open_content)
        self.style_list.changed.connect(self._update_state)
        self.style_list.problems.connect(self.show_problems)
        self.style_list.addRequested.connect(self.add_styles)
        self.params_panel.paramsChanged.connect(self._on_params_changed)
        self.params_panel.advanced.toggled.connect(self.settings.set_advanced_open)
        self.run_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop_run)
        self.history.entrySelected.connect(self.view_entry)
        self.history.restoreRequested.connect(self.restore_entry)
        self.history.exportRequested.connect(self.export_entry)
        c = self.controller
        c.progress.connect(self._on_progress)
        c.preview.connect(self._on_preview)
        c.result.connect(self._on_result_image)
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.stopped.connect(self._on_thread_ended)

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
        return self.controller.is_running

    def _on_content_changed(self, image: ImportedImage | None) -> None:
        self.params_panel.set_content_size((image.width, image.height) if image else None)
        new_path = image.path if image is not None else None
        changed, self._content_path = new_path != self._content_path, new_path
        if changed and not self.controller.is_running:
            # A new photo: the canvas shows it until it is painted (History keeps earlier paintings).
            self._viewing = None
            self.history.clear_selection()
            self.result.view.set_result(None)
            self.result.set_size_text(f"{image.width} × {image.height} px photo" if image else "")
        self.result.view.set_photo(image.preview if image else None)
        if image is not None:
            self.settings.set_last_folder("content", image.path)
        self._update_state()

    def _on_params_changed(self, params: StyleParams | None) -> None:
        self._update_state()

    def _on_devices(self, devices: list[str]) -> None:
        self.available_devices = devices
        self.params_panel.set_available_devices(devices)
        self._update_device_label()

    def _update_device_label(self) -> None:
        params = self.params_panel.last_valid
        if self.last_device:
            device = self.last_device
        elif self.available_devices is None:
            device = "checking…"
        else:
            gpus = [d for d in self.available_devices if d not in ("auto", "cpu")]
            chosen = ENUM_TEXT.get(str(params.device), str(params.device))
            device = f"{chosen} ({'GPU available' if gpus else 'CPU only'})"
        self.device_label.setText(f"Device: {shown(device)} · Weights: {shown(params.weights)}")

    def readiness_problem(self) -> str:
        if self.content_pane.image is None:
            return "Add a photo to paint: drop one on the Photo pane or press Ctrl+O."
        if not self.style_list.rows:
            return "Add at least one style painting."
        if sum(self.style_list.blend()) <= 0:
            return "All style blend sliders are at zero: raise at least one."
        if self.params_panel.params() is None:
            return f"Fix the settings: {self.params_panel.error}"
        return ""

    def _update_state(self) -> None:
        running = self.controller.is_running
        problem = self.readiness_problem()
        can_run = not running and not problem and not self._close_pending
        self.run_button.setEnabled(can_run)
        self.run_action.setEnabled(can_run)
        self.stop_button.setEnabled(running and not self._close_pending)
        self.stop_action.setEnabled(running)
        has_frame = self.result.view.has_result
        self.save_preview_action.setEnabled(has_frame)
        self.export_action.setEnabled(self._export_entry() is not None)
        if running:
            self.readiness.setText("Painting… Stop (Esc) keeps the picture so far.")
            self.run_button.setToolTip("A run is in progress")
        elif problem:
            self.readiness.setText(shown(problem))
            self.run_button.setToolTip(plain_tooltip(f"Cannot run yet: {problem}"))
        else:
            size = self.params_panel.output_size()
            text = f"Ready: {size[0]} × {size[1]} px, " if size else "Ready: "
            self.readiness.setText(f"{text}{self.params_panel.last_valid.iterations} iterations.")
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

    def _new_seed(self) -> None:
        field = self.params_panel.fields.get("seed")
        if field is not None and hasattr(field, "new_seed"):
            field.new_seed()

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
        params = self.params_panel.params()
        if params is None:
            problems.append(f"Settings: {self.params_panel.error}")
        else:
            if params.init is InitMode.IMAGE and params.init_image:
                try:
                    check_input_file(Path(params.init_image))  # never open a FIFO or a device
                    load_image(params.init_image)
                except InputError as error:
                    problems.append(f"Start image {error_text(error, Path(params.init_image).name)}")
            if self.available_devices is not None and str(params.device) not in self.available_devices:
                problems.append(
                    f"Device: {params.device} is not available on this computer; choose Automatic or CPU"
                )
        if problems or content is None or params is None:
            self.show_message("Cannot run:\n" + "\n".join(problems), Level.ERROR)
            return None
        try:
            return StyleJob(content.path, tuple(s.path for s in styles), params, self.style_list.blend())
        except InputError as error:
            self.show_message(f"Cannot run: {error}", Level.ERROR)
            return None

    @guarded
    def start_run(self) -> None:
        if self.controller.is_running or self._close_pending:
            return
        job = self._validated_inputs()
        if job is None:
            return
        if self.message_bar.level is not Level.INFO:
            self.message_bar.dismiss()
        self._run_job = job
        self._run_started = time.monotonic()
        self._frame = None
        self._frame_iteration = 0
        self._frame_losses = {}
        self._result_image = None
        self._viewing = None
        self.history.clear_selection()
        size = self.params_panel.output_size(job.params)
        if size is not None:
            self.result.view.set_canvas_size(QSize(*size))
            self.result.set_size_text(f"{size[0]} × {size[1]} px")
        self.progress.start(job.params.iterations)
        self.progress.set_status("Loading the network and preparing the images…")
        self.settings.set_last_params(job.params)
        # Without a writable data folder there is no crash recovery: nothing to snapshot into.
        self.controller.start(job, snapshotter=self.autosave if self.autosave_enabled else None)
        self.statusBar().showMessage("Painting…")
        self.result.view.setFocus()
        self._update_state()

    @guarded
    def stop_run(self) -> None:
        if self.controller.is_running:
            self.controller.stop()
            self.progress.set_status("Stopping after this iteration…")
            self.stop_button.setEnabled(False)

    def _on_progress(self, iteration: int, total: int, elapsed: float, losses: dict, level: dict) -> None:
        self.progress.update_progress(iteration, total, elapsed, losses, level)
        if not level.get("message") and iteration <= 1:
            self.progress.set_status("")
        self._frame_elapsed = elapsed
        self._frame_losses = dict(losses)

    def _on_preview(self, image: QImage, iteration: int) -> None:
        self._frame = image
        self._frame_iteration = iteration
        if self._viewing is None:
            self.result.view.set_result(image)
            self._update_state()

    def _on_result_image(self, image: QImage) -> None:
        self._result_image = image

    @guarded
    def _on_finished(self, finished: Finished) -> None:
        image = self._result_image if self._result_image is not None else rgb_to_qimage(finished.image)
        self.last_device = finished.device
        self.last_weights_id = finished.weights_id
        entry = self.history.add(finished, image)
        self._viewing = None
        self.result.view.set_canvas_size(image.size())
        self.result.view.set_result(image)
        self.result.set_size_text(f"{image.width()} × {image.height()} px")
        reason = finished.reason
        took = format_duration(finished.seconds)
        if reason is StopReason.COMPLETED:
            self.progress.finish(f"Done · {finished.iterations} iterations in {took}", finished.iterations)
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
    def _on_failed(self, message: str) -> None:
        kept = ""
        if self._frame is not None and self._run_job is not None:
            # The engine gave up without a result; the last preview is the last good picture.
            finished = snapshot_finished(
                self._run_job,
                qimage_to_rgb(self._frame),
                self._frame_iteration,
                self._frame_elapsed,
                self._frame_losses,
                message=f"run failed: {message}",
            )
            self.history.add(finished, self._frame, label="failed")
            kept = f" The last good picture (iteration {self._frame_iteration}) is kept in History."
        self.progress.finish("Failed")
        self.progress.set_status(message)
        self.show_message(f"The run failed: {message}{kept}", Level.ERROR)
        self._update_state()

    def _on_thread_ended(self) -> None:
        # Whatever way the run ended, it ended under our control: the crash-safety copy is not needed.
        self.autosave.clear()
        self.statusBar().clearMessage()
        self._update_state()
        if self._close_pending:
            self.close()

    # ---------------------------------------------------------------- history
    def _export_entry(self) -> HistoryEntry | None:
        if self._viewing is not None:
            return self._viewing
        if self.controller.is_running:
            return None
        return self.history.entries[-1] if self.history.entries else None

    @guarded
    def view_entry(self, entry: HistoryEntry) -> None:
        self._viewing = entry
        self.result.view.set_canvas_size(entry.image.size())
        self.result.view.set_result(entry.image)
        self.result.set_size_text(f"{entry.image.width()} × {entry.image.height()} px · run #{entry.number}")
        self._update_state()

    @guarded
    def restore_entry(self, entry: HistoryEntry) -> None:
        self.apply_job(entry.finished.job, f"run #{entry.number}")

    @guarded
    def export_entry(self, entry: HistoryEntry) -> None:
        self._export(entry.finished, f"painterly-{entry.number}")

    # ----------------------------------------------------------------- saving
    def _suggested_name(self, finished: Finished, stem: str) -> Path:
        content = finished.job.content
        base = content.stem
        if content.is_relative_to(self.locations.cache_dir):
            # Pasted or dropped data lives under a hash name; name the result after what the user saw.
            shown = self.content_pane.image
            base = shown.name if shown is not None and shown.path == content else "painting"
            base = "-".join(Path(base).stem.lower().split()) or "painting"
        folder = self.settings.last_folder("export") or (
            Path.home() if content.is_relative_to(self.locations.cache_dir) else content.parent
        )
        return folder / f"{base}-{stem}.png"

    def _ask_save_path(self, title: str, suggested: Path) -> tuple[Path, int, bool] | None:
        """(path, bit depth, replacing-confirmed) from the Save dialog, or None if cancelled."""
        filters = [text for text, _, _ in EXPORT_FORMATS]
        path, chosen = self.prompter.save_file(title, suggested, filters, filters[0])
        if path is None:
            return None
        extension, bit_depth = ".png", 8
        for text, ext, depth in EXPORT_FORMATS:
            if text == chosen:
                extension, bit_depth = ext, depth
        confirmed = path.exists()  # the dialog asked before returning an existing name
        if path.suffix.lower() not in OUTPUT_FORMATS:
            path = path.with_name(path.name + extension)
            if path.exists():
                # A name we completed was not seen by the dialog: ask here instead.
                confirmed = self.prompter.ask(
                    "Replace file?", f"{path.name} already exists. Replace it?", "Replace", "Cancel"
                )
                if not confirmed:
                    return None
        if bit_depth == 16 and path.suffix.lower() not in (".png", ".tif", ".tiff"):
            bit_depth = 8
        self.settings.set_last_folder("export", path.parent)
        return path, bit_depth, confirmed

    def _write(self, path: Path, finished: Finished, bit_depth: int, overwrite: bool) -> Path | None:
        spec = OutputSpec(path, bit_depth=bit_depth, dpi=finished.job.params.dpi, overwrite=overwrite)
        inputs = job_inputs(finished.job)
        try:
            # Everything that can be refused is refused here, with the picture still safe in History.
            check_output(spec, inputs=inputs, size=(finished.image.shape[1], finished.image.shape[0]))
        except OutputExistsError as error:
            self.show_message(f"Not saved: {error}", Level.WARNING)
            return None
        except InputError as error:
            self.show_message(f"Not saved: {error}", Level.ERROR)
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            outcome = save_result(finished, spec, inputs=inputs)
        except SaveError as error:
            self.show_message(f"Not saved: {error}. The picture is still in History.", Level.ERROR)
            return None
        finally:
            QApplication.restoreOverrideCursor()
        saved = outcome.path
        if outcome.recovered:
            self.show_message(
                f"Could not save {path.name}: {outcome.problem}. The picture was saved to {saved} instead.",
                Level.WARNING,
            )
            return saved
        self.statusBar().showMessage(f"Saved {saved}", 8000)
        self.show_message(f"Saved {saved.name} with its recipe in {saved.parent}", Level.INFO)
        return saved

    def _export(self, finished: Finished, stem: str, title: str = "Export the painting") -> Path | None:
        chosen = self._ask_save_path(title, self._suggested_name(finished, stem))
        if chosen is None:
            return None
        path, bit_depth, confirmed = chosen
        return self._write(path, finished, bit_depth, overwrite=confirmed)

    @guarded
    def export_result(self) -> Path | None:
        entry = self._export_entry()
        if entry is None:
            self.show_message("Nothing to export yet: run first, or pick a run in History.", Level.INFO)
            return None
        return self._export(entry.finished, f"painterly-{entry.number}")

    def current_frame(self) -> Finished | None:
        """The picture on screen now as a Finished record (a snapshot when a run is in progress)."""
        if self._viewing is not None:
            return self._viewing.finished
        if self.controller.is_running and self._frame is not None and self._run_job is not None:
            return snapshot_finished(
                self._run_job,
                qimage_to_rgb(self._frame),
                self._frame_iteration,
                self._frame_elapsed,
                self._frame_losses,
                message=f"preview saved at iteration {self._frame_iteration}",
            )
        entry = self.history.entries[-1] if self.history.entries else None
        return entry.finished if entry is not None else None

    @guarded
    def save_preview(self) -> Path | None:
        finished = self.current_frame()
        if finished is None:
            self.show_message("Nothing to save yet: the preview appears once a run starts.", Level.INFO)
            return None
        return self._export(finished, f"preview-{finished.iterations}", "Save the preview")

    # ---------------------------------------------------------------- recipes
    @guarded
    def open_recipe(self) -> None:
        path = self.prompter.open_file(
            "Open a Painterly image to restore its recipe", self.settings.last_folder("recipe"), RECIPE_FILTER
        )
        if path is not None:
            self.open_recipe_file(path)

    def open_recipe_file(self, path: Path) -> None:
        try:
            # The image and its sidecar are opened only once known to be regular files (a FIFO blocks).
            for candidate in (path, sidecar_path(path)):
                if safe_exists(candidate):
                    check_input_file(candidate)
            recipe = read_recipe(path)
            job = job_from_recipe(recipe, source=path)
        except InputError as error:
            named = error.path if error.path is not None else path
            self.show_message(f"No recipe restored: {error_text(error, named.name)}", Level.ERROR)
            return
        except Exception as error:  # noqa: BLE001 - a hostile recipe (nested 100000 deep, ...) is a message
            log.warning("reading the recipe of %s failed", shown(path), exc_info=True)
            self.show_message(
                f"No recipe restored: {shown(path.name)}: the recipe cannot be read ({type(error).__name__})",
                Level.ERROR,
            )
            return
        self.settings.set_last_folder("recipe", path)
        self.apply_job(job, path.name, recipe)

    def _find_input(self, path: Path, recorded: dict[str, Any] | None) -> Path | None:
        """The input as the job names it, else at the absolute path the recipe recorded."""
        candidates = [path]
        if recorded and recorded.get("path"):
            candidates.append(Path(str(recorded["path"])))
        for candidate in candidates:
            try:
                if candidate.is_file():
                    return candidate
            except (OSError, ValueError):  # a name too long or with a NUL: a recipe is untrusted text
                continue
        return None

    def apply_job(self, job: StyleJob, source: str, recipe: dict[str, Any] | None = None) -> None:
        """Put a job's parameters in the panel and its inputs in the panes (those whose files still exist)."""
        self.params_panel.set_params(job.params)
        inputs = (recipe or {}).get("inputs") or {}
        if not isinstance(inputs, dict):
            inputs = {}
        recorded_styles = inputs.get("styles") if isinstance(inputs.get("styles"), list) else []
        missing: list[str] = []
        problems: list[str] = []

        found = self._find_input(job.content, inputs.get("content") if isinstance(inputs, dict) else None)
        if found is None:
            missing.append(shown(job.content.name))
        else:
            try:
                self.content_pane.set_image(self.importer.from_path(found))
            except (InputError, OSError) as error:
                problems.append(error_text(error, found.name))
        styles: list[tuple[ImportedImage, float]] = []
        for index, (style, blend) in enumerate(zip(job.styles, job.blend, strict=True)):
            recorded = recorded_styles[index] if index < len(recorded_styles) else None
            found = self._find_input(style, recorded if isinstance(recorded, dict) else None)
            if found is None:
                missing.append(shown(style.name))
                continue
            try:
                styles.append((self.importer.from_path(found), blend))
            except (InputError, OSError) as error:
                problems.append(error_text(error, found.name))
        if styles:
            # Blend values are relative; the sliders run 0..100, so scale the largest to 100.
            top = max(b for _, b in styles) or 1.0
            self.style_list.set_styles([(image, 100.0 * b / top) for image, b in styles])
        text = f"Restored every setting from {shown(source)}"
        if missing or problems:
            detail = []
            if missing:
                detail.append("these inputs no longer exist: " + ", ".join(missing))
            detail.extend(problems)
            self.show_message(f"{text}; " + "; ".join(detail), Level.WARNING)
        else:
            self.show_message(f"{text}, with the photo and {len(styles)} style(s).", Level.INFO)
        self._update_state()

    # ------------------------------------------------------------- recovery
    def check_recovery(self) -> bool:
        """Offer what an unclean exit left in the autosave; True when something was restored."""
        pending = self.autosave.pending()
        if pending is None:
            return False
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(pending.saved_at))
        iteration = f" at iteration {pending.iteration}" if pending.iteration else ""
        restore = self.prompter.ask(
            "Restore unfinished work?",
            "Painterly did not close properly last time. The picture of the run that was in progress "
            f"(saved {when}{iteration}) and its settings can be restored.",
            "Restore",
            "Discard",
        )
        try:
            if not restore:
                return False
            loaded = load_image(pending.image_path)
            image = rgb_to_qimage(loaded.rgb)
            job: StyleJob | None = None
            if pending.recipe:
                try:
                    job = job_from_recipe(pending.recipe, source=pending.image_path)
                except InputError as error:
                    log.warning("autosave recipe unusable: %s", error)
            if job is not None:
                self.apply_job(job, "the unfinished run", pending.recipe)
                finished = snapshot_finished(job, loaded.rgb, pending.iteration, 0.0, {}, message="recovered")
                entry = self.history.add(finished, image, label="recovered")
                self.view_entry(entry)
            else:
                self.result.view.set_result(image)
            self.show_message(
                "Restored the unfinished run's picture"
                + (" and settings" if job else "")
                + ". Export it to keep it.",
                Level.INFO,
            )
            return True
        except (InputError, OSError) as error:
            self.show_message(f"The unfinished run could not be restored: {error}", Level.ERROR)
            return False
        finally:
            self.autosave.clear()

    # ------------------------------------------------------------------ about
    def about_details(self) -> tuple[str, str]:
        params = self.params_panel.last_valid
        device = self.last_device
        if not device:
            try:
                from engine.device import choose_device

                device = choose_device(params.device).name
            except Exception as error:  # noqa: BLE001 - the About box must open whatever the device state
                device = f"{params.device} ({describe_exception(error)})"
        weights = params.weights
        if self.last_weights_id:
            weights = f"{weights} ({self.last_weights_id})"
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
        if self.controller.is_running:
            # Stop cooperatively and close once the thread has ended (see _on_thread_ended);
            # blocking here would freeze the window for up to an iteration.
            self._close_pending = True
            self.controller.stop()
            self.progress.set_status("Stopping the run; the window closes when the current iteration ends…")
            self._update_state()
            event.ignore()
            return
        self.save_settings()
        event.accept()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop any run and wait for its thread (at application exit and in tests)."""
        if self._probe is not None:
            self._probe.wait(timeout_ms / 1000)
        if self.controller.is_running:
            self.controller.stop()
            if not self.controller.wait(timeout_ms):
                log.error("the run did not stop within %d ms", timeout_ms)
            self.autosave.clear()
