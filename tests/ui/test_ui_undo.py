"""Undo and redo of the inputs and parameters (Edit menu, Ctrl+Z / Ctrl+Shift+Z), one mechanism
through the run model; a slider drag is one step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QKeySequence
from uihelpers import load_inputs

from engine.presets import PRESETS, apply_preset
from ui import undo


class Clock:
    """time.monotonic for ui.undo, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(undo.time, "monotonic", clock)
    return clock


def _undo(window: Any) -> None:
    window.edits.undo_action.trigger()


def _redo(window: Any) -> None:
    window.edits.redo_action.trigger()


def test_the_edit_menu_has_undo_and_redo_with_their_keys(make_window: Any) -> None:
    window = make_window()
    menus = [action.text().replace("&", "") for action in window.menuBar().actions()]
    assert menus[:2] == ["File", "Edit"]
    edit = window.menuBar().actions()[1].menu()
    texts = [action.text() for action in edit.actions() if action.text()]
    assert texts[:2] == ["Undo", "Redo"] and "Preferences…" in texts
    assert window.edits.undo_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    assert QKeySequence("Ctrl+Shift+Z") in window.edits.redo_action.shortcuts()
    assert not window.edits.undo_action.isEnabled() and not window.edits.redo_action.isEnabled()
    assert "Ctrl+Z" in window.edits.undo_action.toolTip()


def test_undo_and_redo_a_parameter_change(make_window: Any, clock: Clock) -> None:
    window = make_window()
    before = window.params_panel.params()
    box = window.params_panel.fields["iterations"].box
    box.setValue(before.iterations + 77)
    assert window.model.params.iterations == before.iterations + 77
    assert window.edits.undo_action.text() == "Undo Iterations"
    _undo(window)
    assert window.params_panel.params() == before and window.model.params == before
    assert box.value() == before.iterations
    _redo(window)
    assert window.params_panel.params().iterations == before.iterations + 77
    # Undoing and redoing made no steps of their own.
    assert window.edits.stack.count() == 1


def test_a_slider_drag_is_one_step_and_a_pause_starts_the_next(make_window: Any, clock: Clock) -> None:
    window = make_window()
    start = window.params_panel.params().strength
    slider = window.params_panel.fields["strength"].slider
    for value in range(round(start * 100) - 1, 20, -1):  # one change per pixel of the drag
        clock.now += 0.01
        slider.setValue(value)
    assert window.model.params.strength == pytest.approx(0.21)
    assert window.edits.stack.count() == 1
    clock.now += undo.MERGE_SECONDS + 1  # let go, then drag again later: a step of its own
    for value in (30, 40, 50):
        clock.now += 0.01
        slider.setValue(value)
    assert window.edits.stack.count() == 2
    _undo(window)
    assert window.model.params.strength == pytest.approx(0.21)
    _undo(window)
    assert window.model.params.strength == start
    assert slider.value() == round(start * 100)


def test_a_drag_back_to_where_it_started_leaves_no_step(make_window: Any, clock: Clock) -> None:
    window = make_window()
    slider = window.params_panel.fields["strength"].slider
    start = slider.value()
    for value in (start - 10, start - 20, start - 10, start):
        clock.now += 0.05
        slider.setValue(value)
    assert window.edits.stack.count() == 0


def test_a_preset_change_is_one_step(make_window: Any, clock: Clock) -> None:
    window = make_window()
    before = window.params_panel.params()
    combo = window.params_panel.preset_combo
    combo.setCurrentIndex(combo.findData("gatys2016"))
    after = window.params_panel.params()
    assert after == apply_preset(before, "gatys2016") and after != before
    assert window.edits.stack.count() == 1
    assert window.edits.undo_action.text() == f"Undo preset {PRESETS['gatys2016'].display_name}"
    # A change straight after a preset never merges into it.
    clock.now += 0.01
    window.params_panel.fields["iterations"].box.setValue(after.iterations + 1)
    assert window.edits.stack.count() == 2
    _undo(window)
    _undo(window)
    assert window.params_panel.params() == before
    assert combo.currentData() == before.preset


def test_undo_and_redo_styles_added_removed_reordered_and_the_photo(
    make_window: Any, images: dict[str, Path], clock: Clock
) -> None:
    window = make_window()
    load_inputs(window, images)  # the photo, then a style: two steps
    assert window.edits.stack.count() == 2
    window.style_list.add_images([window.importer.from_path(images["style2"])])
    assert window.edits.undo_action.text() == "Undo add style"
    names = lambda: [image.name for image in window.style_list.images()]  # noqa: E731
    assert names() == ["painting.png", "painting2.jpg"]
    window.style_list.move(1, 0)
    assert names() == ["painting2.jpg", "painting.png"]
    window.style_list.remove(0)
    assert names() == ["painting.png"]

    _undo(window)
    assert names() == ["painting2.jpg", "painting.png"]
    _undo(window)
    assert names() == ["painting.png", "painting2.jpg"]
    _undo(window)
    assert names() == ["painting.png"]
    _undo(window)
    assert names() == [] and window.model.inputs.styles == ()
    _undo(window)
    assert window.content_pane.image is None and window.model.inputs.content is None
    assert not window.edits.undo_action.isEnabled()
    for _ in range(5):
        _redo(window)
    assert window.content_pane.image is not None and window.content_pane.image.path == images["content"]
    assert names() == ["painting.png"]


def test_a_blend_drag_is_one_step(make_window: Any, images: dict[str, Path], clock: Clock) -> None:
    window = make_window()
    load_inputs(window, images, styles=("style", "style2"))
    steps = window.edits.stack.count()
    before = window.style_list.blend()
    slider = window.style_list.rows[0].slider
    for value in range(slider.value() - 1, 10, -3):
        clock.now += 0.02
        slider.setValue(value)
    assert window.style_list.blend() != before
    assert window.edits.stack.count() == steps + 1
    assert window.edits.undo_action.text() == "Undo style blend"
    _undo(window)
    assert window.style_list.blend() == pytest.approx(before)


def test_a_run_uses_what_undo_put_back(
    make_window: Any, images: dict[str, Path], qtbot: Any, clock: Clock
) -> None:
    window = make_window()
    load_inputs(window, images)
    window.params_panel.set_params(window.params_panel.params().replace(size=32, iterations=3))
    window.params_panel.fields["iterations"].box.setValue(4)
    _undo(window)
    received: list[Any] = []
    window.model.job_changed.connect(received.append)
    window.start_run()
    qtbot.waitUntil(lambda: not window.is_running, timeout=30_000)
    assert received and received[0].params.iterations == 3
