"""The studio at 1280 x 720: folding panes, canvas only (Tab), full screen (F11), one zoom readout,
a loss chart whose legend is never cut off."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from uihelpers import activate

from engine.records import Progress


def _small_window(make_window: Any, qtbot: Any, **options: Any) -> Any:
    window = make_window(**options)
    window.resize(1280, 720)
    activate(window, qtbot)
    return window


def test_progress_and_history_fold_and_the_canvas_takes_their_room(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    view = window.result.view
    open_height = view.height()
    assert open_height >= 330, open_height  # was about 300 px with fixed panes
    window.progress_pane.button.click()
    window.history_pane.button.click()
    qtbot.wait(20)
    for pane in (window.progress_pane, window.history_pane):
        assert not pane.is_open and pane.body.isHidden()
        assert pane.height() <= pane.header_height() + 1
    folded_height = view.height()
    assert folded_height >= open_height + 150, (open_height, folded_height)
    assert window.studio.pane_actions[0].isChecked() is False  # the View menu says so too
    window.studio.pane_actions[1].trigger()
    assert window.history_pane.is_open and not window.history.isHidden()


def test_folded_panes_are_remembered(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    window.history_pane.button.click()
    window.close()
    again = _small_window(make_window, qtbot)
    assert not again.history_pane.is_open and again.progress_pane.is_open


def test_tab_on_the_picture_hides_the_panels_and_brings_them_back(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    columns = [window.splitter.widget(0), window.splitter.widget(2)]
    panels = [*columns, window.progress_pane, window.history_pane, window.statusBar()]
    view = window.result.view
    # Tab in a field moves the focus, as it always does.
    seed = window.params_panel.fields["seed"].edit
    seed.setFocus()
    qtbot.keyClick(seed, Qt.Key.Key_Tab)
    assert all(panel.isVisible() for panel in panels)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert not any(panel.isVisible() for panel in panels)
    assert view.isVisible() and window.studio.canvas_only_action.isChecked()
    assert view.hasFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert all(panel.isVisible() for panel in panels)
    assert not window.studio.canvas_only_action.isChecked()
    # A pane folded before canvas only stays folded after it.
    window.history_pane.set_open(False)
    window.studio.canvas_only_action.trigger()
    window.studio.canvas_only_action.trigger()
    assert window.history_pane.isVisible() and not window.history_pane.is_open


def test_f11_fills_the_screen(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    assert "F11" in window.studio.full_screen_action.shortcut().toString()
    window.studio.full_screen_action.trigger()
    qtbot.waitUntil(lambda: bool(window.windowState() & Qt.WindowState.WindowFullScreen))
    window.studio.full_screen_action.trigger()
    qtbot.waitUntil(lambda: not window.windowState() & Qt.WindowState.WindowFullScreen)


def test_one_zoom_readout_with_fit_and_1_1_as_actions(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    result = window.result
    assert "%" not in result.actual_button.text() and "%" not in result.fit_button.text()
    assert "1:1" in result.actual_button.toolTip()
    result.view.set_canvas_size(result.view.size() * 2)
    result.actual_button.click()
    assert result.zoom_label.text() == "100%"
    result.fit_button.click()
    assert result.zoom_label.text().endswith("%") and result.zoom_label.text() != "100%"


def test_the_loss_chart_legend_is_never_cut_off(make_window: Any, qtbot: Any) -> None:
    window = _small_window(make_window, qtbot)
    progress = window.progress
    progress.start(10)
    losses = {"total": 12.5, "content": 3.25, "style": 9.0, "tv": 0.25}
    progress.show_progress(Progress(1, 10, 0.5, losses))
    chart = progress.chart
    metrics = QFontMetrics(chart.font())
    for width in (chart.width(), 220, 160):
        room = width - 16
        rows = chart.legend_rows(metrics.horizontalAdvance, room)
        names = [text.split(" ")[0] for row in rows for _, _, text in row]
        assert names == ["total", "content", "style", "smoothness"]
        for row in rows:
            used = sum(metrics.horizontalAdvance(text) + 26 for _, _, text in row) - 26 + 14
            assert used <= room or len(row) == 1, (width, row)
