"""Helpers shared by the window's tests (imported by conftest and the test modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ui.prompts import Prompter


class FakePrompter(Prompter):
    """Canned answers instead of modal dialogs; records every question asked."""

    def __init__(self) -> None:
        super().__init__(None)
        self.open_answers: list[list[Path]] = []
        self.file_answer: Path | None = None
        self.save_answer: tuple[Path | None, str] | None = None
        self.ask_answer = True
        self.asked: list[tuple[str, str]] = []
        # choose(): the index answered (None: the first choice, as Enter would); every question asked.
        self.choose_answer: int | None = None
        self.chosen: list[tuple[str, str, list[str]]] = []
        self.save_options: Any = None  # the options widget the last save dialog would have shown

    def open_images(self, title: str, folder: Path | None, multiple: bool = False) -> list[Path]:
        return self.open_answers.pop(0) if self.open_answers else []

    def open_file(self, title: str, folder: Path | None, file_filter: str) -> Path | None:
        return self.file_answer

    def save_file(
        self, title: str, suggested: Path, filters: list[str], selected: str, options: Any = None
    ) -> tuple[Path | None, str]:
        self.save_options = options
        return self.save_answer if self.save_answer is not None else (None, selected)

    def choose(self, title: str, text: str, choices: list[str], cancel: int) -> int:
        self.chosen.append((title, text, list(choices)))
        return 0 if self.choose_answer is None else self.choose_answer

    def ask(self, title: str, text: str, accept: str, reject: str) -> bool:
        self.asked.append((title, text))
        return self.ask_answer


def make_image(path: Path, width: int = 40, height: int = 30, seed: int = 0) -> Path:
    """A small, textured RGB image (smooth gradients plus noise, so the losses are not degenerate)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x / max(1, width - 1), y / max(1, height - 1), 0.5 + 0.5 * np.sin(x / 3.0 + seed)], axis=2
    )
    pixels = np.clip(base * 200 + rng.integers(0, 55, size=(height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def load_inputs(window: Any, images: dict[str, Path], styles: tuple[str, ...] = ("style",)) -> None:
    window.content_pane.set_image(window.importer.from_path(images["content"]))
    window.style_list.add_images([window.importer.from_path(images[name]) for name in styles])


def tiny_params(window: Any, **changes: Any) -> None:
    """Small and quick: a 32 px painting in a few iterations."""
    params = window.params_panel.last_valid.replace(**{"size": 32, "iterations": 6, **changes})
    window.params_panel.set_params(params)


def drop(widget: Any, mime: Any, position: Any = None) -> bool:
    """Deliver a drag-enter and a drop of ``mime`` to ``widget`` as a file manager would."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    point = position if position is not None else widget.rect().center()
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    try:  # PySide6 >= 6.12 takes a QPointF here, older releases a QPoint
        enter = QDragEnterEvent(QPointF(point), actions, mime, buttons, modifiers)
    except TypeError:
        enter = QDragEnterEvent(QPoint(point), actions, mime, buttons, modifiers)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(
        QPointF(point),
        Qt.DropAction.CopyAction | Qt.DropAction.MoveAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)
    return True


def file_mime(*paths: Path) -> Any:
    from PySide6.QtCore import QMimeData, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def bytes_mime(data: bytes, fmt: str = "image/png") -> Any:
    from PySide6.QtCore import QByteArray, QMimeData

    mime = QMimeData()
    mime.setData(fmt, QByteArray(data))
    return mime


def wait_for_run(qtbot: Any, window: Any, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: not window.is_running, timeout=timeout)
    # Let the queued finished/failed signals and the thread-ended cleanup be delivered.
    qtbot.wait(20)


def wait_for_picture(qtbot: Any, window: Any, timeout: int = 30_000) -> Any:
    """A context that waits for the run's first picture (the model's frame)."""
    frame = window.model.frame_changed
    return qtbot.waitSignal(frame, timeout=timeout, check_params_cb=lambda f: f is not None)


def activate(window: Any, qtbot: Any) -> None:
    """Show the window and make it the active one: keyboard shortcuts act only there."""
    from PySide6.QtWidgets import QApplication

    window.show()
    qtbot.waitExposed(window)
    window.windowHandle().requestActivate()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
