"""Colour control in the window: the Colours choice goes into the job and the recipe; the result's
Photo colours slider recolours the picture on view at once, and Export saves it as shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage
from uihelpers import load_inputs, tiny_params, wait_for_run

from engine import colour
from engine.imageio import load_image
from engine.metadata import read_recipe
from engine.params import ColorMode, StyleJob
from engine.records import Finished, to_uint8
from ui.photo_colours import PhotoColours, blended, photo_chroma_delta
from ui.prompts import EXPORT_FORMATS
from ui.worker import Throttle

RESULT_SHAPE = (24, 32)


def _pixels(image: QImage) -> np.ndarray:
    """A QImage's pixels as float32 H x W x 3 in [0, 1]."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(np.float32) / 255.0


@pytest.fixture
def soft_photo(images: dict[str, Path]) -> Path:
    """A photo of moderate colours: with any mid-grey luminance its chroma stays inside sRGB (no clipping)."""
    rng = np.random.default_rng(5)
    pixels = rng.uniform(0.3, 0.7, size=(30, 40, 3))
    pixels[:, :20, 0] += 0.1  # some red on the left, so the chroma is not noise alone
    path = images["content"].with_name("soft.png")
    Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def _scripted(received: list[StyleJob]) -> Any:
    """A stand-in for the engine: records the job, paints a greyish picture at once."""

    def stylize(job: StyleJob, **_: Any):
        received.append(job)
        rng = np.random.default_rng(len(received))
        grey = rng.uniform(0.45, 0.55, size=(*RESULT_SHAPE, 1))
        image = np.clip(grey + rng.uniform(-0.05, 0.05, size=(*RESULT_SHAPE, 3)), 0, 1).astype(np.float32)
        yield Finished(job=job, image=image, iterations=1, seconds=0.01, device="CPU", losses={})

    return stylize


def _run(window: Any, qtbot: Any, **params: Any) -> Any:
    tiny_params(window, **params)
    window.start_run()
    wait_for_run(qtbot, window)
    return window.history.entries[-1]


@pytest.fixture
def scripted_window(
    make_window: Any, images: dict[str, Path], soft_photo: Path
) -> tuple[Any, list[StyleJob]]:
    received: list[StyleJob] = []
    window = make_window(stylize=_scripted(received), throttle=Throttle(preview=0.0, progress=0.0))
    images = {**images, "content": soft_photo}
    load_inputs(window, images)
    return window, received


def test_the_colours_choice_reaches_the_job_and_round_trips_through_a_recipe(
    scripted_window: Any, make_window: Any, qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window, received = scripted_window
    field = window.params_panel.fields["colors"]
    assert field.widget.parentWidget().objectName() == "Group_look"
    combo = field.combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "The painting's",
        "The photo's",
        "The painting, recoloured to the photo",
    ]
    photo_tip = combo.itemData(combo.findData("photo"), 3)  # Qt.ToolTipRole
    assert "keeps the photo's colours" in photo_tip and "brush marks" in photo_tip
    combo.setCurrentIndex(combo.findData("match"))
    assert window.model.params.colors is ColorMode.MATCH
    _run(window, qtbot)
    assert received[-1].params.colors is ColorMode.MATCH

    target = tmp_path / "matched.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.export_result() == target
    assert read_recipe(target)["job"]["params"]["colors"] == "match"
    fresh = make_window(restore_settings=False)
    assert fresh.params_panel.params().colors is ColorMode.PAINTING
    fresh.open_recipe_file(target)
    assert fresh.params_panel.fields["colors"].combo.currentData() == "match"
    assert fresh.params_panel.params().colors is ColorMode.MATCH


def test_photo_colours_recolour_the_picture_on_view_at_once(
    scripted_window: Any, qtbot: Any, soft_photo: Path
) -> None:
    window, _ = scripted_window
    slider = window.result.photo_colors
    assert not slider.isEnabled()  # nothing finished on view yet
    entry = _run(window, qtbot)
    assert slider.isEnabled() and slider.value() == 0
    before = _pixels(window.result.view.result_image())
    slider.setValue(40)  # no event loop turn, no run: the picture changes at once
    partway = _pixels(window.result.view.result_image())
    assert np.abs(partway - before).max() > 2 / 255
    assert window.result.photo_colors_value.text() == "40%"
    slider.setValue(100)
    shown = _pixels(window.result.view.result_image())
    photo = colour._resized(load_image(soft_photo).rgb, RESULT_SHAPE)
    shown_yiq, photo_yiq = colour.rgb_to_yiq(shown), colour.rgb_to_yiq(photo)
    # 8-bit rounding of each channel moves I and Q by well under 2/255.
    np.testing.assert_allclose(shown_yiq[:, :, 1:], photo_yiq[:, :, 1:], atol=2 / 255)
    # The luminance stays the painting's.
    own_y = colour.rgb_to_yiq(entry.finished.image)[:, :, 0]
    np.testing.assert_allclose(shown_yiq[:, :, 0], own_y, atol=2 / 255)


def test_the_slider_resets_to_each_pictures_own_photo_colours(scripted_window: Any, qtbot: Any) -> None:
    window, _ = scripted_window
    slider = window.result.photo_colors
    first = _run(window, qtbot)
    slider.setValue(70)
    second = _run(window, qtbot, photo_colors=0.25)
    assert slider.value() == 25  # the new result as it was made
    window.view_entry(first)
    assert slider.value() == 0
    np.testing.assert_allclose(
        _pixels(window.result.view.result_image()), first.finished.image, atol=1 / 255
    )
    window.view_entry(second)
    assert slider.value() == 25
    # Below the picture's own value the photo's chroma is taken back out.
    slider.setValue(0)
    shown = _pixels(window.result.view.result_image())
    assert np.abs(shown - second.finished.image).max() > 1 / 255


def test_the_photo_s_colours_leave_nothing_to_blend(scripted_window: Any, qtbot: Any) -> None:
    window, _ = scripted_window
    _run(window, qtbot, colors=ColorMode.PHOTO)
    slider = window.result.photo_colors
    assert slider.value() == 100 and not slider.isEnabled()
    assert "already has the photo's colours" in slider.toolTip()


def test_export_at_half_writes_the_adjusted_pixels_and_says_so(
    scripted_window: Any, qtbot: Any, prompter: Any, tmp_path: Path, soft_photo: Path
) -> None:
    window, _ = scripted_window
    entry = _run(window, qtbot)
    window.result.photo_colors.setValue(50)
    target = tmp_path / "half.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.export_result() == target
    recipe = read_recipe(target)
    assert recipe["job"]["params"]["photo_colors"] == 0.5
    written = load_image(target).rgb
    plain = to_uint8(entry.finished.image).astype(np.float32) / 255
    assert np.abs(written - plain).max() > 2 / 255
    expected = colour.with_photo_chroma(entry.finished.image, load_image(soft_photo).rgb, 0.5)
    np.testing.assert_allclose(written, expected, atol=1 / 255 + 1e-6)
    # The history keeps the picture as it was made.
    assert entry.finished.job.params.photo_colors == 0.0


@pytest.mark.parametrize("edge", [512, 2048])
def test_the_blend_is_with_photo_chroma_and_a_move_is_quick(edge: int, capsys: Any) -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, size=(edge, edge, 3)).astype(np.float32)
    photo = rng.uniform(0, 1, size=(edge * 3 // 4, edge, 3)).astype(np.float32)
    delta = photo_chroma_delta(image, photo)
    expected = colour.with_photo_chroma(image, photo, 0.6)
    np.testing.assert_allclose(blended(image, delta, 0.6), expected, atol=1e-5)
    from ui.qtutil import rgb_to_qimage

    start = time.perf_counter()
    rgb_to_qimage(blended(image, delta, 0.3))
    took = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nphoto colours: one slider move at {edge} px took {took * 1000:.1f} ms")
    assert took < (0.1 if edge <= 512 else 1.0)  # generous: a loaded CI machine


def test_the_controller_needs_no_window(qtbot: Any) -> None:
    from PySide6.QtWidgets import QLabel, QSlider

    slider, readout = QSlider(), QLabel()
    shown: list[QImage] = []
    controller = PhotoColours(slider, readout, shown.append, lambda text: None)
    assert controller.source is None and not slider.isEnabled() and readout.text() == ""
    slider.setValue(30)
    assert not shown  # nothing on view to recolour
