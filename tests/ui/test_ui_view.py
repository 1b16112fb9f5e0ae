"""The result view (zoom, pan, compare), keyboard shortcuts and the About box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QPointF, QSize, Qt
from PySide6.QtGui import QImage, QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication, QLineEdit
from uihelpers import load_inputs

from ui.result_view import ResultView


def _image(width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkCyan)
    return image


def test_zoom_fit_100_and_wheel(qtbot: Any) -> None:
    view = ResultView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    view.view.set_result(_image(1200, 800))
    view.fit_button.click()
    assert view.view.fitting and view.view.zoom < 0.5
    view.actual_button.click()
    assert view.view.zoom * view.view.devicePixelRatioF() == 1.0
    assert view.zoom_label.text() == "100%"
    before = view.view.zoom
    wheel = QWheelEvent(
        QPointF(100, 100),
        QPointF(view.view.mapToGlobal(QPoint(100, 100))),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.view.viewport(), wheel)
    assert view.view.zoom > before and not view.view.fitting


def test_previews_smaller_than_the_output_fill_the_same_canvas(qtbot: Any) -> None:
    view = ResultView()
    qtbot.addWidget(view)
    view.view.set_canvas_size(QSize(400, 300))
    view.view.set_result(_image(100, 75))  # a coarse level
    assert view.view.result_item.sceneBoundingRect().size().toSize() == QSize(400, 300)


def test_compare_split_and_hold(qtbot: Any) -> None:
    view = ResultView()
    qtbot.addWidget(view)
    view.view.set_photo(_image(40, 30))
    assert view.view.showing_photo == 1.0  # before any painting the canvas shows the photo
    view.view.set_result(_image(40, 30))
    assert view.view.showing_photo == 0.0
    view.compare.setValue(500)
    assert view.view.showing_photo == 0.5 and view.view.split_line.isVisible()
    view.view.set_hold_compare(True)
    assert view.view.showing_photo == 1.0
    view.view.set_hold_compare(False)
    assert view.view.showing_photo == 0.5


def test_hold_space_or_c_compares_but_not_while_typing(make_window: Any, images: dict[str, Path], qtbot: Any):
    window = make_window()
    load_inputs(window, images)
    window.result.view.set_result(_image(40, 30))
    window.show()
    qtbot.waitExposed(window)
    window.result.view.setFocus()
    qtbot.keyPress(window.result.view, Qt.Key.Key_C)
    assert window.result.view.showing_photo == 1.0
    qtbot.keyRelease(window.result.view, Qt.Key.Key_C)
    assert window.result.view.showing_photo == 0.0
    qtbot.keyPress(window.result.view, Qt.Key.Key_Space)
    assert window.result.view.showing_photo == 1.0
    qtbot.keyRelease(window.result.view, Qt.Key.Key_Space)
    seed = window.params_panel.fields["seed"].edit
    assert isinstance(seed, QLineEdit)
    seed.setFocus()
    qtbot.keyPress(seed, Qt.Key.Key_C)
    assert window.result.view.showing_photo == 0.0


def test_standard_shortcuts_are_bound(make_window: Any) -> None:
    window = make_window()

    def keys(action: Any) -> set[str]:
        return {s.toString() for s in action.shortcuts()}

    assert QKeySequence(QKeySequence.StandardKey.Open).toString() in keys(window.commands.open)
    assert QKeySequence(QKeySequence.StandardKey.Save).toString() in keys(window.commands.save_preview)
    assert "Ctrl+E" in keys(window.commands.export)
    assert {"Ctrl+R", "Ctrl+Return"} <= keys(window.commands.run)
    assert "Esc" in keys(window.commands.stop)


def test_about_box_names_versions_device_and_weights(make_window: Any) -> None:
    window = make_window()
    dialog = window.show_about()
    text = dialog.text()
    for word in ("Painterly", "Python", "Qt", "PySide6", "PyTorch", "Device", "Network weights"):
        assert word in text
    assert "default" in text
    dialog.close()
