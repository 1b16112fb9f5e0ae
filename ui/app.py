"""Application start-up: ``run_app`` is what ``python main.py`` calls."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from engine.recipe import painterly_version
from ui.settings import APPLICATION, ORGANIZATION, AppLocations, folder_problem
from ui.theme import apply_theme

if TYPE_CHECKING:
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)


class InertFormatter(logging.Formatter):
    """Log lines with control characters escaped: a file name or a recipe value that carries terminal
    escape sequences must not retitle or clear the terminal the log is printed to (and a name that is
    not UTF-8 must not make the log file's encoder fail)."""

    def format(self, record: logging.LogRecord) -> str:
        from engine.text import printable

        return "\n".join(printable(line) for line in super().format(record).split("\n"))


def _setup_logging(folder: Path) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_painterly", False) for h in root.handlers):
        return
    root.setLevel(logging.INFO)
    formatter = InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler: logging.Handler | None = None
    # A folder that cannot be written (a read-only home) means no log file; warnings still reach stderr.
    if folder_problem(folder) is None:
        try:
            file_handler = logging.handlers.RotatingFileHandler(
                folder / "painterly.log", maxBytes=1_000_000, backupCount=2, encoding="utf-8"
            )
        except OSError:
            file_handler = None
    if file_handler is not None:
        file_handler.setFormatter(formatter)
        file_handler._painterly = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(formatter)
    console._painterly = True  # type: ignore[attr-defined]
    root.addHandler(console)


def _qt_arguments(argv: list[str]) -> list[str]:
    """The arguments as Qt may see them (it looks for its own options, such as -platform).

    A file name that is not UTF-8 reaches Python as text with surrogate escapes, and PySide6
    crashes (SIGSEGV) converting such a list for QApplication; Qt gets a copy with those bytes
    replaced, while the files themselves are opened by their real names (``run_app``).
    """
    return [os.fsencode(arg).decode("utf-8", "replace") for arg in argv]


def create_application(argv: list[str]) -> QApplication:
    """The QApplication with Painterly's names, high-DPI policy and theme."""
    # Fractional scale factors (125%, 150%) render at their true size instead of being rounded.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationVersion(painterly_version())
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(_qt_arguments(argv))
    QGuiApplication.setDesktopFileName("painterly")
    apply_theme(app)
    return app


def create_window(locations: AppLocations | None = None, **options: Any) -> MainWindow:
    """The main window with the app's excepthook pointed at it; ``options`` go to MainWindow.

    Never fails for want of a writable folder: the window checks its folders itself and says what
    cannot be saved (``MainWindow.storage_problems``).
    """
    locations = locations or AppLocations.from_environment()
    _setup_logging(locations.data_dir)

    from ui.main_window import MainWindow  # after QApplication: the window module builds Qt objects

    window = MainWindow(locations=locations, **options)
    previous_hook = sys.excepthook

    def excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        # An exception escaping a Qt callback (a paint event, a slot) must not end the app.
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(kind, error, tb)))
        if isinstance(error, KeyboardInterrupt):
            previous_hook(kind, error, tb)
            return
        QTimer.singleShot(0, lambda: window.report_exception(error))

    sys.excepthook = excepthook
    window.destroyed.connect(lambda: setattr(sys, "excepthook", previous_hook))
    return window


def load_files(window: MainWindow, files: list[Path]) -> None:
    """A photo and then style images, as given on the command line."""
    from ui.imports import error_text

    problems: list[str] = []
    try:
        window.content_pane.set_image(window.importer.from_path(files[0]))
    except Exception as error:  # noqa: BLE001 - shown in the window
        problems.append(error_text(error, files[0].name or str(files[0])))
    styles = []
    for path in files[1:]:
        try:
            styles.append(window.importer.from_path(path))
        except Exception as error:  # noqa: BLE001 - shown in the window
            problems.append(error_text(error, path.name or str(path)))
    if styles:
        window.style_list.add_images(styles)
    if problems:
        window.show_problems(problems)


def run_app(argv: list[str]) -> int:
    """Open the studio; positional arguments are a photo, then style images, to load at start."""
    app = create_application(argv)
    window = create_window()
    window.show()
    # The session kept last time first (History, photo, styles, settings); then the files named on
    # the command line (a new photo, more styles), and what a crash left to History.
    QTimer.singleShot(0, window.session.restore)
    files = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if files:
        QTimer.singleShot(0, lambda: load_files(window, files))
    if window.autosave_enabled:
        # Without a writable data folder nothing was autosaved there, and nothing could be cleared.
        QTimer.singleShot(0, window.check_recovery)
    if os.environ.get("PAINTERLY_QUIT_AFTER_MS"):
        # Smoke tests: open the window, then leave through the normal close path.
        QTimer.singleShot(int(os.environ["PAINTERLY_QUIT_AFTER_MS"]), window.close)
    try:
        code = app.exec()
    finally:
        window.shutdown()
    return int(code)
