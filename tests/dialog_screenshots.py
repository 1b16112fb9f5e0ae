"""Screenshots of the session's and the export's dialogs over the real window, under Xvfb.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tests/dialog_screenshots.py /tmp/shots

Makes a real run (tubingen.jpg in the style of starry_night.jpg from /work/shared/images, 128 px,
8 iterations), then opens the quit prompt (results never exported), the quit prompt during a run,
the export dialog with its quality and privacy choices, and Preferences; each is grabbed from the
screen with the window behind it, then cancelled.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path("/work/shared/images")


def main(argv: list[str]) -> int:
    output = Path(argv[0] if argv else "/tmp/shots")
    output.mkdir(parents=True, exist_ok=True)
    content, style = IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg"
    if not (content.is_file() and style.is_file()):
        print(f"skipped: {IMAGES} with tubingen.jpg and starry_night.jpg is not available")
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    config = tempfile.TemporaryDirectory(prefix="painterly-dialog-shots-")
    os.environ["PAINTERLY_CONFIG_DIR"] = config.name
    sys.path.insert(0, str(ROOT))

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

    from ui.app import create_application, create_window

    app = create_application(["painterly"])
    window = create_window(device_probe=None)
    window.resize(1280, 800)
    window.show()
    window.content_pane.set_image(window.importer.from_path(content))
    window.style_list.add_images([window.importer.from_path(style)])
    window.params_panel.set_params(window.params_panel.last_valid.replace(size=128, iterations=8))

    def wait(condition: Any, seconds: float = 600) -> None:
        import time

        end = time.monotonic() + seconds
        while not condition() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def grab(name: str) -> None:
        for _ in range(20):
            app.processEvents()
        screen = QApplication.primaryScreen()
        path = output / name
        screen.grabWindow(0).save(str(path))
        print(f"saved {path}")

    def show_then(name: str, dialog: Any, close: Any) -> int:
        dialog.show()
        QTimer.singleShot(0, lambda: None)
        wait(lambda: dialog.isVisible(), 5)
        grab(name)
        close(dialog)
        return 0

    window.start_run()
    wait(lambda: not window.is_running)
    wait(lambda: False, 0.5)

    # The quit prompt with a result never exported: Cancel.
    original_exec = QMessageBox.exec

    def message_exec(box: QMessageBox) -> int:
        return show_then(
            f"quit-prompt-{len(list(output.glob('quit-prompt*.png'))) + 1}.png",
            box,
            lambda b: next(x for x in b.buttons() if x.text() == "Cancel").click(),
        )

    QMessageBox.exec = message_exec  # type: ignore[method-assign]
    window.close()
    assert window.isVisible()

    # The quit prompt during a run.
    window.params_panel.set_params(window.params_panel.last_valid.replace(size=128, iterations=2000))
    window.start_run()
    wait(lambda: window.model.frame is not None, 120)
    window.close()
    window.stop_run()
    wait(lambda: not window.is_running)
    QMessageBox.exec = original_exec  # type: ignore[method-assign]

    # The export dialog with its choices.
    def file_exec(dialog: QFileDialog) -> int:
        dialog.resize(900, 620)
        return show_then("export-dialog.png", dialog, lambda d: d.reject())

    QFileDialog.exec = file_exec  # type: ignore[method-assign]
    window.export_result()

    # Preferences.
    dialog = window.session.show_preferences()
    wait(lambda: dialog.isVisible(), 5)
    grab("preferences.png")
    dialog.reject()

    window.session.decision = None
    window.model.history[-1].exported = True
    for entry in window.model.history:
        entry.exported = True
    window.close()
    window.shutdown()
    config.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
