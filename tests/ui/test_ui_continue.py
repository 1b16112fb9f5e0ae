"""Continue from this: a history entry's or the shown result's job, set up to go on from its picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cli
from engine.imageio import load_image
from engine.metadata import read_recipe
from engine.params import InitMode
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_run
from ui.main_window import CONTINUE_ITERATIONS


def _assert_same_picture(path: Path, image: np.ndarray) -> None:
    loaded = load_image(path).rgb
    assert loaded.shape == image.shape
    assert np.abs(loaded - image).max() <= 1 / 255 + 1e-6  # 8-bit rounding


def _first_run(window, images, qtbot) -> None:
    load_inputs(window, images)
    tiny_params(window, iterations=2, seed=7, style_weight=3.0)
    window.start_run()
    wait_for_run(qtbot, window)
    assert len(window.model.history) == 1


def test_continue_from_history_entry_then_run(make_window, images, qtbot, locations) -> None:
    window = make_window()
    _first_run(window, images, qtbot)
    entry = window.history.entries[0]
    before = entry.finished.job.params
    assert window.history.continue_button.isEnabled()

    window.history.select(0)
    window.history.continue_button.click()

    panel = window.params_panel.last_valid
    picture = Path(panel.init_image)
    assert picture.is_file() and picture.is_relative_to(locations.cache_dir)
    assert picture.name.startswith(f"continue-{entry.number}-")
    _assert_same_picture(picture, entry.finished.image)
    # Only the start, the levels and the iterations change; the panel shows "An image" with the file.
    assert panel.init is InitMode.IMAGE
    assert panel.coarse_to_fine is False and panel.levels == ()
    assert panel.iterations == CONTINUE_ITERATIONS == cli.CONTINUE_ITERATIONS
    kept = before.replace(
        init=InitMode.IMAGE, init_image=str(picture), coarse_to_fine=False, levels=(), iterations=50
    )
    assert panel == kept
    assert "continue run #1" in window.message_bar.text
    assert window.run_button.isEnabled()

    # Fewer iterations for a quick test; the artist may change them too.
    tiny_params(window, iterations=2, size=before.size, init=InitMode.IMAGE, init_image=str(picture))
    window.start_run()
    job = window.model.job
    assert job.params.init is InitMode.IMAGE
    assert Path(job.params.init_image) == picture and picture.is_file()
    assert job.params.coarse_to_fine is False
    assert job.content == entry.finished.job.content and job.styles == entry.finished.job.styles
    wait_for_run(qtbot, window)
    assert len(window.model.history) == 2
    continued = window.model.history[-1].finished
    assert continued.iterations == 2
    assert continued.image.shape == entry.finished.image.shape

    # The continued result's recipe names the picture as its start image.
    saved = window.exporter.write(locations.cache_dir / "out.png", continued, 8, overwrite=False)
    recipe = read_recipe(saved)
    # Exported with file names only (the default): the start image by its name and fingerprint.
    assert recipe["job"]["params"]["init_image"] == picture.name
    start = recipe["inputs"]["init_image"]
    assert start["name"] == picture.name and "path" not in start


def test_continue_from_the_result_view(make_window, images, qtbot) -> None:
    window = make_window()
    assert not window.commands.continue_from.isEnabled()  # nothing to continue from yet
    _first_run(window, images, qtbot)
    entry = window.model.history[-1]
    action = window.commands.continue_from
    assert action.isEnabled()
    assert action in window.result.view.actions()  # the picture's right-click menu
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions() if a.menu() is not None}
    assert action in menus["Run"].actions()

    action.trigger()
    panel = window.params_panel.last_valid
    assert panel.init is InitMode.IMAGE and panel.coarse_to_fine is False
    _assert_same_picture(Path(panel.init_image), entry.finished.image)

    # A larger Long edge upscales and refines in one level.
    window.params_panel.set_params(panel.replace(size=48, iterations=2))
    window.start_run()
    job = window.model.job
    assert job.params.init is InitMode.IMAGE and job.params.levels == ()
    wait_for_run(qtbot, window)
    finished = window.model.history[-1].finished
    assert finished.iterations == 2
    assert max(finished.image.shape[:2]) == 48


def test_continue_when_the_cache_cannot_be_written(make_window, images, qtbot, locations) -> None:
    window = make_window()
    _first_run(window, images, qtbot)
    blocker = locations.cache_dir / "continue"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    picture = window.continue_entry(window.model.history[-1])
    assert picture is not None and picture.is_file()
    assert not picture.is_relative_to(locations.cache_dir)
    assert window.params_panel.last_valid.init_image == str(picture)
