"""Defects an artist hit in the first hour: the wheel changing values while scrolling, stale banners,
and a tinted History selection."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QDoubleSpinBox, QSpinBox
from uihelpers import load_inputs, tiny_params, wait_for_picture, wait_for_run

from engine.records import StopReason
from ui.history import THUMB, HistoryStrip
from ui.message_bar import Level
from ui.param_panel import ParamPanel
from ui.worker import Throttle


def _wheel(widget: Any, steps: int = 1) -> None:
    from PySide6.QtGui import QWheelEvent

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(widget.rect().center())),
        QPoint(0, 0),
        QPoint(0, -120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def _spin_box(panel: ParamPanel) -> Any:
    for field in panel.fields.values():
        box = getattr(field, "box", None)
        if isinstance(box, (QSpinBox, QDoubleSpinBox)) and box.isEnabled() and box.value() > box.minimum():
            return box
    raise AssertionError("no spin box in the panel")


def test_wheel_over_an_unfocused_spin_box_scrolls_the_panel_not_the_value(qtbot: Any) -> None:
    panel = ParamPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 200)
    panel.show()
    qtbot.waitExposed(panel)
    box = _spin_box(panel)
    assert box.focusPolicy() == Qt.FocusPolicy.StrongFocus
    panel.ensureWidgetVisible(box)
    bar = panel.verticalScrollBar()
    bar.setValue(0)
    before, scrolled = box.value(), bar.value()
    assert not box.hasFocus()
    _wheel(box)
    assert box.value() == before
    assert bar.value() > scrolled or bar.maximum() == 0

    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    _wheel(box)
    assert box.value() != before


def test_wheel_over_unfocused_combo_and_slider_leaves_them(qtbot: Any) -> None:
    panel = ParamPanel()
    qtbot.addWidget(panel)
    panel.show()
    for field in panel.fields.values():
        for name in ("combo", "slider"):
            control = getattr(field, name, None)
            if control is None or not control.isEnabled():
                continue
            value = control.currentIndex() if name == "combo" else control.value()
            _wheel(control)
            _wheel(control, -1)
            assert (control.currentIndex() if name == "combo" else control.value()) == value


def test_cannot_run_banner_goes_when_the_missing_style_is_added(
    make_window: Any, images: dict[str, Path]
) -> None:
    window = make_window()
    window.content_pane.set_image(window.importer.from_path(images["content"]))
    window.start_run()
    assert window.message_bar.level is Level.ERROR and "No style" in window.message_bar.text
    window.style_list.add_images([window.importer.from_path(images["style"])])
    assert window.message_bar.text == ""


def test_an_unrelated_banner_stays_when_inputs_change(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    window.show_message("Something else", Level.WARNING)
    load_inputs(window, images)
    assert window.message_bar.text == "Something else"


def test_stop_notices_go_when_the_run_ends_and_the_next_run_starts(
    make_window: Any, images: dict[str, Path], qtbot: Any
) -> None:
    window = make_window(throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0))
    load_inputs(window, images)
    tiny_params(window, iterations=2000)
    with wait_for_picture(qtbot, window):
        window.start_run()
    with qtbot.waitSignal(window.model.finished, timeout=10_000) as finished:
        window.stop_run()
        assert "Stopping after this iteration" in window.progress.status.text()
    wait_for_run(qtbot, window)
    assert finished.args[0].reason is StopReason.STOPPED
    assert "Stopping" not in window.progress.status.text()
    assert "Stopped at iteration" in window.message_bar.text

    tiny_params(window, iterations=4)
    window.start_run()
    assert "Stopped at iteration" not in window.message_bar.text
    wait_for_run(qtbot, window)
    assert "Stopped at iteration" not in window.message_bar.text
    assert "Stopping" not in window.progress.status.text()


def test_selected_history_thumbnail_is_not_tinted(qtbot: Any) -> None:
    strip = HistoryStrip()
    qtbot.addWidget(strip)
    strip.resize(500, 160)
    image = QImage(THUMB, QImage.Format.Format_RGB32)
    image.fill(QColor(40, 120, 200))
    entry = SimpleNamespace(image=image, thumbnail_source=image, title="#1", details="run 1", number=1)
    strip.add_entry(entry)  # type: ignore[arg-type]
    strip.show()
    qtbot.waitExposed(strip)
    assert strip.current() is entry
    item = strip.list.item(0)
    assert item.isSelected()
    shown = item.icon().pixmap(THUMB, _selected_mode()).toImage()
    assert shown.pixelColor(shown.rect().center()) == QColor(40, 120, 200)
    grab = strip.list.viewport().grab().toImage()
    rect = strip.list.visualItemRect(item)
    ratio = grab.devicePixelRatio()
    # The middle of the thumbnail, well away from the selection frame.
    point = QPoint(round(rect.center().x() * ratio), round((rect.top() + 4 + THUMB.height() // 2) * ratio))
    pixel = grab.pixelColor(point)
    assert max(abs(pixel.red() - 40), abs(pixel.green() - 120), abs(pixel.blue() - 200)) <= 1, pixel.name()


def _selected_mode() -> Any:  # noqa: N802
    from PySide6.QtGui import QIcon

    return QIcon.Mode.Selected
