"""The entry point: `python main.py` opens the window and closes cleanly; exceptions become messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ui.message_bar import Level

ROOT = Path(__file__).resolve().parents[2]


def test_python_main_opens_the_window_and_exits_cleanly(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        PAINTERLY_CONFIG_DIR=str(tmp_path / "config"),
        PAINTERLY_QUIT_AFTER_MS="1500",
    )
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # The clean close saved the settings in the isolated folder, and left no autosave behind.
    assert (tmp_path / "config" / "config" / "painterly.ini").is_file()
    assert not (tmp_path / "config" / "data" / "autosave.png").exists()


def test_an_exception_escaping_a_callback_becomes_a_message(qtbot: Any, locations: Any) -> None:
    from ui.app import create_window

    previous = sys.excepthook
    window = create_window(locations, device_probe=None)
    qtbot.addWidget(window)
    try:
        try:
            raise ValueError("something broke in a paint event")
        except ValueError as error:
            sys.excepthook(type(error), error, error.__traceback__)
        qtbot.waitUntil(lambda: not window.message_bar.isHidden())
        assert window.message_bar.level is Level.ERROR
        assert "something broke" in window.message_bar.text
    finally:
        window.shutdown()
        sys.excepthook = previous


def test_a_failing_slot_reports_instead_of_raising(make_window: Any, prompter: Any, tmp_path: Path) -> None:
    window = make_window()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    prompter.open_answers = [[broken]]
    window.commands.open.trigger()
    assert window.content_pane.image is None
    assert "broken.png" in window.message_bar.text

    def explode() -> None:
        raise RuntimeError("boom")

    prompter.open_images = lambda *args, **kwargs: explode()  # type: ignore[method-assign]
    window.commands.open.trigger()
    assert "RuntimeError" in window.message_bar.text and "boom" in window.message_bar.text
