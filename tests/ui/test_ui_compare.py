"""Comparing two pictures: the split line dragged on the picture, the flip key, and choosing what to
compare with (the photo, a run in History)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from uihelpers import activate, load_inputs

from engine.params import StyleJob, StyleParams
from engine.records import Finished, StopReason
from ui.result_view import ResultView


def _filled(colour: str, width: int = 40, height: int = 30) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB888)
    image.fill(QColor(colour))
    return image


def _shown_colour(view: Any) -> QColor:
    """The colour of the picture filling the view, right of any split (the base item's pixels)."""
    image = view.result_item.pixmap().toImage()
    return image.pixelColor(image.width() - 1, image.height() // 2)


def _line_position(view: Any) -> QPoint:
    x = view.canvas_size.width() * view.split
    return view.mapFromScene(QPointF(x, view.canvas_size.height() / 2))


def test_dragging_the_split_line_on_the_picture_moves_it(qtbot: Any) -> None:
    result = ResultView()
    qtbot.addWidget(result)
    result.resize(700, 500)
    result.show()
    qtbot.waitExposed(result)
    view = result.view
    view.set_photo(_filled("#204080", 400, 300))
    view.set_result(_filled("#c08020", 400, 300))
    view.fit()
    result.compare.setValue(500)
    start = _line_position(view)
    port = view.viewport()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(port, start + QPoint(60, 0))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 0))
    moved = 0.5 + 60 / (400 * view.zoom)
    assert abs(view.split - moved) < 0.02, view.split
    assert abs(result.compare.value() / 1000 - view.split) < 0.002  # the toolbar slider follows
    assert abs(view.showing_reference - view.split) < 1e-9

    # Pressing away from the line pans as before: the split stays where it is.
    split = view.split
    away = _line_position(view) + QPoint(-120, 0)
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=away)
    qtbot.mouseMove(port, away + QPoint(40, 0))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=away + QPoint(40, 0))
    assert view.split == split


def test_the_flip_key_swaps_the_picture_and_the_comparison(
    make_window: Any, images: dict[str, Path], qtbot: Any
) -> None:
    window = make_window()
    load_inputs(window, images)
    view = window.result.view
    view.set_result(_filled("#c08020"))
    activate(window, qtbot)  # shortcuts act in the active window only
    view.setFocus()
    painting = _shown_colour(view)
    assert painting == QColor("#c08020") and view.shown_side == "A"
    qtbot.keyClick(view, Qt.Key.Key_X)
    assert view.shown_side == "B" and view.flipped
    photo = view.reference_image()
    assert view.result_item.pixmap().toImage().size() == photo.size()
    assert _shown_colour(view) != painting  # the photo fills the view now
    assert view.photo_item.pixmap().toImage().pixelColor(0, 0) == QColor("#c08020")
    qtbot.keyClick(view, Qt.Key.Key_X)
    assert view.shown_side == "A" and _shown_colour(view) == painting
    # X typed into a text field is a letter, not a flip.
    seed = window.params_panel.fields["seed"].edit
    seed.setFocus()
    qtbot.keyClick(seed, Qt.Key.Key_X)
    assert view.shown_side == "A"


def _entry(window: Any, colour: str) -> Any:
    job = StyleJob(Path("photo.png"), (Path("style.png"),), StyleParams())
    pixels = np.zeros((30, 40, 3), dtype=np.float32)
    finished = Finished(job, pixels, 3, 0.5, "CPU", {"total": 1.0}, StopReason.COMPLETED)
    return window.model.add_to_history(finished, _filled(colour))


def test_a_history_entry_compares_with_the_picture_on_view(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    load_inputs(window, images)
    first = _entry(window, "#ff0000")
    second = _entry(window, "#00ff00")
    window.view_entry(second)
    view = window.result.view
    assert view.labels[0] == "Run #2"
    window.history.compareRequested.emit(first)
    assert view.labels == ("Run #2", "Run #1")
    assert view.reference_image().pixelColor(0, 0) == QColor("#ff0000")
    assert 0 < view.split < 1 and view.showing_reference > 0  # the split opens by itself
    assert window.result.compare_button.text() == "Compare: Run #1 ▾"
    # Back to the photo from the view's Compare menu.
    window.result.compare_menu.aboutToShow.emit()
    texts = [action.text() for action in window.result.compare_menu.actions()]
    assert {"Photo", "Run #1", "Run #2"} <= set(texts)
    next(a for a in window.result.compare_menu.actions() if a.text() == "Photo").trigger()
    assert view.labels[1] == "Photo" and view.compares_with_photo
    # "View beside the photo" shows the entry with the photo under the split line.
    window.history.comparePhotoRequested.emit(first)
    assert view.labels == ("Run #1", "Photo")
    assert view.result_item.pixmap().toImage().pixelColor(0, 0) == QColor("#ff0000")


def test_a_finished_run_is_named_by_its_number(make_window: Any, images: dict[str, Path], qtbot: Any) -> None:
    from uihelpers import tiny_params, wait_for_run

    window = make_window()
    load_inputs(window, images)
    tiny_params(window, iterations=2)
    window.start_run()
    wait_for_run(qtbot, window)
    assert window.result.view.labels[0] == f"Run #{window.history.entries[-1].number}"
