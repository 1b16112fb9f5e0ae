"""Regions in the window: painting masks (mouse and pen), undo, the keys, and the job carrying them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QInputDevice, QMouseEvent, QPointingDevice, QTabletEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from uihelpers import load_inputs, tiny_params, wait_for_run

from engine.metadata import read_recipe
from engine.params import StyleJob
from engine.recipe import Embed
from engine.records import Finished
from engine.regions import load_mask
from engine.results import OutputSpec, write_result
from ui.masks import Brush, RegionMasks, dab_profile, render_overlay
from ui.prompts import EXPORT_FORMATS
from ui.worker import Throttle

RESULT_SHAPE = (24, 32)


def _scripted(received: list[StyleJob]) -> Any:
    """A stand-in for the engine: records the job it receives and paints a grey picture."""

    def stylize(job: StyleJob, **_: Any):
        received.append(job)
        image = np.full((*RESULT_SHAPE, 3), 0.5, np.float32)
        yield Finished(job=job, image=image, iterations=1, seconds=0.01, device="CPU", losses={})

    return stylize


@pytest.fixture
def studio(make_window: Any, images: dict[str, Path], tmp_path: Path) -> tuple[Any, list[StyleJob]]:
    received: list[StyleJob] = []
    window = make_window(stylize=_scripted(received), throttle=Throttle(preview=0.0, progress=0.0))
    # A photo large enough that a stroke is many mask pixels wide.
    from uihelpers import make_image

    photo = make_image(images["content"].parent / "wide.png", 200, 150, seed=5)
    load_inputs(window, {**images, "content": photo}, styles=("style", "style2"))
    window.resize(1200, 800)
    window.show()
    window.content_pane.regions_button.setChecked(True)
    QApplication.processEvents()
    return window, received


def _mouse(widget: Any, kind: QEvent.Type, point: QPointF, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(
        kind, point, widget.mapToGlobal(point), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, event)


def _stroke(canvas: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag from ``start`` to ``end`` in mask pixels."""
    a, b = canvas.to_widget(*start), canvas.to_widget(*end)
    _mouse(canvas, QEvent.Type.MouseButtonPress, a, Qt.MouseButton.LeftButton)
    for t in np.linspace(0, 1, 8)[1:]:
        _mouse(canvas, QEvent.Type.MouseMove, a + (b - a) * float(t), Qt.MouseButton.LeftButton)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)


def _distance_to_segment(shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float]):
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))


def test_a_stroke_changes_the_mask_where_drawn_and_nowhere_else_and_undo_removes_it(studio: Any) -> None:
    window, _ = studio
    editor, masks = window.regions.editor, window.regions.masks
    assert window.regions.is_open and editor.isVisible()
    assert masks.size == (200, 150)
    key = editor.current
    assert key == window.style_list.rows[0].region_id
    editor.set_brush_size(20)
    start, end = (40.0, 50.0), (150.0, 60.0)
    _stroke(editor.canvas, start, end)
    layer = masks.layer(key)
    distance = _distance_to_segment(layer.shape, start, end)
    # Full along the line, untouched a little beyond the brush's radius, and nothing anywhere else.
    assert layer[distance < 4].min() == 255
    assert layer[distance > 10 + 1.5].max() == 0
    assert not masks.painted(window.style_list.rows[1].region_id)
    assert window.regions.painted and window.content_pane.regions_caption.text() == "1 of 2 styles placed"

    window.regions.masks.undo_stack.undo()
    assert not masks.layer(key).any()
    editor.redo_button.click()
    assert masks.layer(key)[distance < 4].min() == 255
    # Ctrl+Z while the canvas has the focus undoes the stroke too.
    editor.canvas.setFocus()
    QTest.keyClick(editor.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not masks.layer(key).any()


def test_painting_one_style_takes_the_place_of_another_and_the_eraser_lowers_only_its_own(
    studio: Any,
) -> None:
    window, _ = studio
    editor, masks = window.regions.editor, window.regions.masks
    first, second = (row.region_id for row in window.style_list.rows)
    masks.fill(first)
    assert masks.layer(first).min() == 255
    editor.choose_region(second)
    editor.set_brush_size(30)
    _stroke(editor.canvas, (100.0, 20.0), (100.0, 130.0))
    total = masks.layer(first).astype(int) + masks.layer(second).astype(int)
    assert total.max() <= 255 + 1  # rounding of the soft edge
    assert masks.layer(second)[75, 100] == 255 and masks.layer(first)[75, 100] == 0
    editor.eraser_button.setChecked(True)
    _stroke(editor.canvas, (100.0, 60.0), (100.0, 90.0))
    assert masks.layer(second)[75, 100] == 0 and masks.layer(first)[75, 100] == 0  # a hole: the photo


def test_keys_change_the_brush_and_swap_the_tools(studio: Any) -> None:
    window, _ = studio
    editor = window.regions.editor
    editor.canvas.setFocus()
    editor.set_brush_size(40)
    QTest.keyClick(editor.canvas, Qt.Key.Key_BracketRight)
    assert editor.canvas.brush.size == pytest.approx(50)
    QTest.keyClick(editor.canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(editor.canvas, Qt.Key.Key_BracketLeft)
    assert editor.canvas.brush.size == pytest.approx(32)
    assert editor.size_label.text() == "32 px"
    assert not editor.canvas.brush.erase
    QTest.keyClick(editor.canvas, Qt.Key.Key_X)
    assert editor.canvas.brush.erase and editor.eraser_button.isChecked()
    QTest.keyClick(editor.canvas, Qt.Key.Key_X)
    assert not editor.canvas.brush.erase
    QTest.keyClick(editor.canvas, Qt.Key.Key_E)
    assert editor.canvas.brush.erase
    QTest.keyClick(editor.canvas, Qt.Key.Key_B)
    assert not editor.canvas.brush.erase
    QTest.keyClick(editor.canvas, Qt.Key.Key_Escape)
    assert not window.regions.is_open and not window.content_pane.regions_button.isChecked()


def _pen() -> QPointingDevice:
    return QPointingDevice(
        "test pen", 4242, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
        QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3,
    )  # fmt: skip


def _tablet(
    canvas: Any, device: QPointingDevice, kind: QEvent.Type, at: tuple[float, float], pressure: float
) -> QTabletEvent:
    point = canvas.to_widget(*at)
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.TabletRelease else Qt.MouseButton.LeftButton
    event = QTabletEvent(
        kind, device, point, canvas.mapToGlobal(point), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
        Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, buttons,
    )  # fmt: skip
    QApplication.sendEvent(canvas, event)
    return event


def _pen_stroke(canvas: Any, device: QPointingDevice, y: float, pressure: float) -> None:
    _tablet(canvas, device, QEvent.Type.TabletPress, (30.0, y), pressure)
    for x in np.linspace(30, 170, 10)[1:]:
        _tablet(canvas, device, QEvent.Type.TabletMove, (float(x), y), pressure)
    _tablet(canvas, device, QEvent.Type.TabletRelease, (170.0, y), pressure)


def test_a_pens_pressure_sets_the_width_and_opacity_of_the_line(studio: Any) -> None:
    window, _ = studio
    editor, masks = window.regions.editor, window.regions.masks
    key = editor.current
    editor.set_brush_size(40)
    pen = _pen()
    press = _tablet(editor.canvas, pen, QEvent.Type.TabletPress, (100.0, 10.0), 0.5)
    assert press.isAccepted()  # taken as a pen stroke: Qt makes no mouse events of it
    _tablet(editor.canvas, pen, QEvent.Type.TabletRelease, (100.0, 10.0), 0.5)
    masks.clear(key)
    _pen_stroke(editor.canvas, pen, 40.0, 0.1)
    light = masks.layer(key)[:75].copy()
    _pen_stroke(editor.canvas, pen, 110.0, 1.0)
    firm = masks.layer(key)[75:].copy()
    light_rows = (light > 0).any(axis=1).sum()
    firm_rows = (firm > 0).any(axis=1).sum()
    assert firm_rows > 2 * light_rows > 0  # wider
    assert firm.max() == 255 and light.max() < 110  # and more opaque
    assert editor.canvas.last_pressure == pytest.approx(1.0)


def test_the_painted_regions_reach_the_job_the_worker_receives_and_come_back_with_it(
    studio: Any, qtbot: Any, prompter: Any, tmp_path: Path, make_window: Any
) -> None:
    window, received = studio
    editor, masks = window.regions.editor, window.regions.masks
    first, second = (row.region_id for row in window.style_list.rows)
    editor.set_brush_size(24)
    _stroke(editor.canvas, (10.0, 30.0), (190.0, 30.0))
    tiny_params(window)
    window.start_run()
    wait_for_run(qtbot, window)
    job = received[-1]
    assert len(job.masks) == 2
    painted = load_mask(job.masks[0]).weight
    assert painted.shape == (150, 200)
    assert np.abs(painted * 255 - masks.layer(first)).max() <= 0.5
    assert not load_mask(job.masks[1]).weight.any()  # the second style: painted nowhere
    assert window.model.history[-1].finished.job.masks == job.masks
    assert "Regions: painted" in window.model.history[-1].details

    # A history entry brings its regions back, after they were changed.
    masks.clear(first)
    masks.fill(second)
    window.restore_entry(window.model.history[-1])
    first, second = (row.region_id for row in window.style_list.rows)  # the rows were made anew
    assert np.array_equal(masks.layer(first), np.round(painted * 255).astype(np.uint8))
    assert not masks.painted(second)

    # So does the recipe of an exported picture, in a new window.
    target = tmp_path / "with-regions.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.export_result() == target
    recipe = read_recipe(target)
    assert [entry["sha256"] for entry in recipe["inputs"]["masks"]] == [
        load_mask(path).sha256 for path in job.masks
    ]
    # (Reopened from a copy that records full paths: an export records file names only, and finding
    # the photo and paintings by name is the recipe restorer's business, not the regions'.)
    with_paths = tmp_path / "with-paths.png"
    write_result(window.model.history[-1].finished, OutputSpec(with_paths, embed=Embed.PATHS))
    fresh = make_window(restore_settings=False)
    fresh.open_recipe_file(with_paths)
    restored = fresh.regions.masks
    fresh_first = fresh.style_list.rows[0].region_id
    assert np.array_equal(restored.layer(fresh_first), masks.layer(first))
    # Masks painted in the window are found in its cache by name, wherever the recipe says they were.
    by_name = dataclasses.replace(job, masks=tuple(Path(path.name) for path in job.masks))
    assert fresh.regions.restore(by_name, None) == []
    assert np.array_equal(restored.layer(fresh.style_list.rows[0].region_id), masks.layer(first))

    # Nothing painted: the job has no masks (every style everywhere).
    masks.clear(first)
    window.start_run()
    wait_for_run(qtbot, window)
    assert received[-1].masks == ()


def test_continuing_a_run_keeps_its_regions(studio: Any, qtbot: Any) -> None:
    window, received = studio
    window.regions.masks.fill(window.style_list.rows[1].region_id)
    tiny_params(window)
    window.start_run()
    wait_for_run(qtbot, window)
    window.continue_entry(window.model.history[-1])
    window.start_run()
    wait_for_run(qtbot, window)
    assert received[-1].params.init_image and received[-1].masks == received[0].masks


def test_a_removed_styles_region_goes_and_comes_back_with_it(studio: Any) -> None:
    window, _ = studio
    masks, style_list = window.regions.masks, window.style_list
    second = style_list.rows[1]
    masks.fill(second.region_id)
    colour, image = second.colour.name(), second.image
    painted = masks.layer(second.region_id).copy()
    style_list.remove(1)
    assert not window.regions.painted and window.regions.job_masks() == ()
    assert window.regions.editor.region_combo.count() == 1
    # The same painting back (an undone removal, a restored job): its region and colour come back.
    style_list.add_images([image])
    back = style_list.rows[1]
    assert back.colour.name() == colour
    assert np.array_equal(masks.layer(back.region_id), painted)
    # Rows made anew for the same paintings keep their regions.
    style_list.set_styles(style_list.styles())
    assert np.array_equal(masks.layer(style_list.rows[1].region_id), painted)
    assert not masks.painted(style_list.rows[0].region_id)


def test_a_mask_loads_from_and_saves_to_a_png(studio: Any, prompter: Any, tmp_path: Path) -> None:
    window, _ = studio
    editor, masks = window.regions.editor, window.regions.masks
    from PIL import Image

    source = tmp_path / "half.png"
    half = np.zeros((30, 40), np.uint8)
    half[:, :20] = 255
    Image.fromarray(half).save(source)
    prompter.open_answers.append([source])
    editor.load_region()
    layer = masks.layer(editor.current)
    assert layer[:, :95].min() == 255 and layer[:, 105:].max() == 0  # scaled to the photo
    masks.undo_stack.undo()
    assert not masks.layer(editor.current).any()
    masks.undo_stack.redo()
    target = tmp_path / "saved"
    prompter.save_answer = (target, "PNG mask (*.png)")
    saved = editor.save_region()
    assert saved == tmp_path / "saved.png"
    assert np.array_equal(np.asarray(Image.open(saved)), masks.layer(editor.current))
    prompter.open_answers.append([tmp_path / "missing.png"])
    problems: list[str] = []
    editor.problem.connect(problems.append)
    editor.load_region()
    assert problems and "missing.png" in problems[0]


# -- the masks without the window -------------------------------------------------------------------


def test_a_dab_is_full_inside_soft_at_its_edge_and_empty_outside() -> None:
    rect, profile = dab_profile(10.0, 0.5, 20.0, 20.0, (40, 40))
    assert (rect.x(), rect.y()) == (10, 10)
    centre = profile[20 - rect.y(), 20 - rect.x()]
    assert centre == pytest.approx(1.0)
    ys, xs = np.mgrid[rect.y() : rect.y() + rect.height(), rect.x() : rect.x() + rect.width()] + 0.5
    distance = np.hypot(xs - 20, ys - 20)
    assert profile[distance <= 4.9].min() == pytest.approx(1.0)
    assert profile[distance >= 10].max() == 0.0
    middle = profile[(distance > 6.5) & (distance < 8.5)]
    assert 0.05 < middle.min() and middle.max() < 0.95


def test_the_overlay_shows_each_region_in_its_colour(qtbot: Any) -> None:
    from PySide6.QtGui import QColor

    layers = [np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)]
    layers[0][0, 0] = 255
    layers[1][1, 1] = 255
    out = np.zeros((2, 2, 4), np.uint8)
    render_overlay(layers, [QColor("#ff0000"), QColor("#0000ff")], 0.5, out)
    assert tuple(out[0, 0]) == (0, 0, 128, 128)  # premultiplied BGRA: half-opaque red
    assert tuple(out[1, 1]) == (128, 0, 0, 128)
    assert tuple(out[0, 1]) == (0, 0, 0, 0)


def test_masks_follow_a_new_photo_size_and_write_one_file_per_content(qtbot: Any, tmp_path: Path) -> None:
    masks = RegionMasks()
    masks.set_photo_size(4000, 3000)
    assert masks.size == (2048, 1536)
    masks.begin_stroke(1, Brush(size=100), 500, 500)
    masks.end_stroke()
    first = masks.write_for_job([1, 2], tmp_path)
    again = masks.write_for_job([1, 2], tmp_path)
    assert first == again and len(set(first)) == 2
    assert len(list(tmp_path.glob("mask-*.png"))) == 2
    masks.set_photo_size(400, 300)
    assert masks.size == (400, 300) and masks.painted(1)
    assert masks.layer(1)[int(500 / 5.12), int(500 / 5.12)] == 255
    assert not masks.undo_stack.canUndo()


def test_a_style_can_come_from_part_of_its_painting(
    studio: Any, qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window, received = studio
    from PIL import Image

    part = tmp_path / "upper-half.png"
    pixels = np.zeros((32, 32), np.uint8)
    pixels[:16] = 255
    Image.fromarray(pixels).save(part)
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(black)
    editor = window.regions.editor
    first = window.style_list.rows[0].region_id
    prompter.open_answers.append([black])
    editor.part_action.trigger()
    assert "black everywhere" in window.message_bar.text and window.regions.job_style_masks() == ()
    prompter.open_answers.append([part])
    editor.part_action.trigger()
    assert window.regions.style_masks == {first: part}
    assert "from upper-half.png" in editor.hint.text()
    tiny_params(window)
    window.start_run()
    wait_for_run(qtbot, window)
    assert received[-1].style_masks == (part, None) and received[-1].masks == ()
    editor.whole_action.trigger()
    assert window.regions.job_style_masks() == ()
    window.restore_entry(window.model.history[-1])
    assert window.regions.job_style_masks() == (part, None)
