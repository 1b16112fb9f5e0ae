"""Export and Save preview write the engine's recipe; Open recipe restores parameters and inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from uihelpers import load_inputs, tiny_params, wait_for_picture, wait_for_run

from engine.imageio import load_image
from engine.metadata import read_recipe
from engine.params import StyleParams
from engine.presets import PRESETS, apply_preset
from engine.records import StopReason
from ui.message_bar import Level
from ui.prompts import EXPORT_FORMATS
from ui.worker import Throttle


def _finished_run(make_window: Any, images: dict[str, Path], qtbot: Any, **params: Any) -> Any:
    window = make_window(throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0))
    load_inputs(window, images, styles=("style", "style2"))
    window.style_list.rows[1].slider.setValue(40)
    tiny_params(window, **params)
    window.start_run()
    wait_for_run(qtbot, window)
    assert window.history.entries
    return window


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_export_embeds_the_recipe_as_the_command_line_does(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path, suffix: str
) -> None:
    window = _finished_run(make_window, images, qtbot)
    target = tmp_path / f"result{suffix}"
    chosen = next(text for text, ext, depth in EXPORT_FORMATS if ext.startswith(suffix[:4]) and depth == 8)
    prompter.save_answer = (target, chosen)
    saved = window.commands.export.trigger() or target
    assert saved.is_file()
    recipe = read_recipe(target)
    finished = window.history.entries[-1].finished
    assert recipe["job"]["params"] == finished.job.params.to_dict()
    assert recipe["iterations"] == finished.iterations
    assert recipe["weights_id"] == finished.weights_id
    # File names only, by default (the export's privacy choice): no folders.
    assert [s["name"] for s in recipe["inputs"]["styles"]] == ["painting.png", "painting2.jpg"]
    assert all("path" not in s for s in recipe["inputs"]["styles"])
    assert recipe["job"]["blend"] == pytest.approx([60.0, 40.0])  # each style's share, as shown
    assert load_image(target).size == (32, 24)
    assert window.message_bar.level is Level.INFO


def test_export_sixteen_bit_png(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
):
    window = _finished_run(make_window, images, qtbot)
    target = tmp_path / "deep.png"
    prompter.save_answer = (target, "PNG image, 16 bits per channel (*.png)")
    window.export_result()
    assert load_image(target).mode.startswith(("I;16", "RGB"))
    assert read_recipe(target)["job"]["params"]["size"] == 32


def test_no_silent_overwrite(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
):
    window = _finished_run(make_window, images, qtbot)
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"precious")
    # A name typed without its extension is completed here; the dialog never saw the real name,
    # so the window asks before replacing it, and "no" keeps the file.
    prompter.save_answer = (tmp_path / "taken", EXPORT_FORMATS[0][0])
    prompter.ask_answer = False
    window.export_result()
    assert prompter.asked and "taken.png" in prompter.asked[-1][1]
    assert existing.read_bytes() == b"precious"
    # The dialog itself confirmed replacing an existing name it showed: that is the user's yes.
    prompter.save_answer = (existing, EXPORT_FORMATS[0][0])
    window.export_result()
    assert existing.read_bytes() != b"precious"
    assert read_recipe(existing)


def test_export_and_reopen_the_recipe_restores_parameters_and_inputs(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window = _finished_run(make_window, images, qtbot, style_weight=42.5, seed=1234, tv_weight=0.2)
    made_with = window.history.entries[-1].finished.job
    # Saved beside its inputs: a recipe with file names only (the default) finds them there.
    target = images["content"].parent / "made.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    window.export_result()

    fresh = make_window(restore_settings=False)
    fresh.params_panel.set_params(apply_preset(StyleParams(), "gatys2016"))
    prompter.file_answer = target
    fresh.commands.open_recipe.trigger()
    assert fresh.params_panel.params() == made_with.params
    assert fresh.content_pane.image is not None and fresh.content_pane.image.path == images["content"]
    assert [image.path for image in fresh.style_list.images()] == [images["style"], images["style2"]]
    assert fresh.style_list.blend() == pytest.approx((60.0, 40.0))
    assert "Restored every setting" in fresh.message_bar.text
    assert fresh.run_button.isEnabled()


def test_reopening_a_recipe_whose_inputs_are_gone_restores_the_parameters(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window = _finished_run(make_window, images, qtbot, preset="default", style_weight=7.0)
    target = images["content"].parent / "made.webp"
    prompter.save_answer = (target, "WebP image (*.webp)")
    window.export_result()
    images["style2"].unlink()
    fresh = make_window(restore_settings=False)
    fresh.open_recipe_file(target)
    assert fresh.params_panel.params().style_weight == 7.0
    assert [image.name for image in fresh.style_list.images()] == ["painting.png"]
    assert fresh.message_bar.level is Level.WARNING
    assert "painting2.jpg" in fresh.message_bar.text


def test_opening_an_image_without_a_recipe_says_so(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    window.open_recipe_file(images["content"])
    assert window.message_bar.level is Level.ERROR
    assert "no Painterly recipe" in window.message_bar.text


def test_save_preview_during_a_run(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window = make_window(throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0))
    load_inputs(window, images)
    tiny_params(window, iterations=2000)
    with wait_for_picture(qtbot, window):
        window.start_run()
    target = tmp_path / "frame.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.commands.save_preview.isEnabled()
    window.commands.save_preview.trigger()
    window.stop_run()
    wait_for_run(qtbot, window)
    recipe = read_recipe(target)
    assert recipe["reason"] == str(StopReason.STOPPED)
    assert "preview saved at iteration" in recipe["message"]
    assert recipe["job"]["params"]["iterations"] == 2000


def test_history_entries_can_be_viewed_restored_and_exported(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    window = _finished_run(make_window, images, qtbot, seed=1)
    tiny_params(window, seed=2, preset="gatys2016", iterations=3)
    window.start_run()
    wait_for_run(qtbot, window)
    first, second = window.history.entries
    assert first.finished.job.params.seed == 1 and second.finished.job.params.seed == 2
    window.history.select(0)
    assert window.model.viewing is first
    assert "run #1" in window.result.size_label.text()
    window.history.restore_button.click()
    assert window.params_panel.params() == first.finished.job.params
    target = tmp_path / "first.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    window.history.export_button.click()
    assert read_recipe(target)["job"]["params"]["seed"] == 1
    assert PRESETS["gatys2016"].params.iterations != 3


def test_export_writes_the_print_resolution(
    make_window: Any, images: dict[str, Path], qtbot: Any, prompter: Any, tmp_path: Path
) -> None:
    from PIL import Image

    window = _finished_run(make_window, images, qtbot, dpi=300.0)
    target = tmp_path / "print.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    window.export_result()
    with Image.open(target) as saved:
        assert round(saved.info["dpi"][0]) == 300
