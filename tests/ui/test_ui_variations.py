"""Variations in the window: tiles appear one by one, a click makes a tile's settings current, and
"Paint this at full size" runs them (tiny network, tiny tiles)."""

from __future__ import annotations

from PySide6.QtWidgets import QToolBar

from engine.params import Method
from engine.variations import Tile, Variation
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_run
from ui.variations import PAINT_TEXT, SHORTCUT


def _small(window, count: int = 4) -> None:
    variations = window.variations
    variations.count, variations.tile_size, variations.tile_iterations = count, 32, 2


def _wait_for_grid(qtbot, window, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: not window.variations.is_painting, timeout=timeout)
    qtbot.wait(20)


def test_the_command_is_in_the_menu_and_toolbar_and_waits_for_inputs(make_window, images) -> None:
    window = make_window()
    action = window.variations.action
    assert SHORTCUT in action.toolTip() and action.shortcut().toString() == SHORTCUT
    run_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Run")
    assert action in run_menu.actions()
    assert action in window.findChild(QToolBar, "MainToolbar").actions()
    assert not action.isEnabled()  # no photo, no style yet
    load_inputs(window, images)
    assert action.isEnabled()


def test_tiles_appear_one_by_one_and_a_click_makes_a_tiles_settings_current(
    make_window, images, qtbot
) -> None:
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, size=48, iterations=3)
    _small(window)
    shown: list[int] = []
    window.variations.action.trigger()
    dialog = window.variations.dialog
    assert dialog is not None and dialog.isVisible()
    assert len(dialog.tiles) == 4 and not any(tile.isEnabled() for tile in dialog.tiles)
    labels = [tile.text() for tile in dialog.tiles]
    assert labels[0] == "As set" and labels[1] == "Strength 0.5"
    assert not window.variations.action.isEnabled()  # one grid at a time

    original = dialog.show_tile
    dialog.show_tile = lambda tile, image: (shown.append(tile.index), original(tile, image))  # type: ignore[method-assign]
    _wait_for_grid(qtbot, window)
    assert shown == [0, 1, 2, 3]  # each as it was painted, in order
    assert all(tile.isEnabled() and not tile.icon().isNull() for tile in dialog.tiles)
    assert dialog.tiles[1].iconSize().width() == 32  # the painted tile's own size (32 x 24)
    assert "variations in" in dialog.status.text()
    assert not dialog.paint_button.isEnabled()  # nothing chosen yet

    chosen: Variation = dialog.variations[1]
    assert chosen.params.strength == 0.5 and chosen.params.size == 48  # the full size, not the tile's
    dialog.click_tile(1)
    assert window.model.params == chosen.params
    assert window.params_panel.last_valid == chosen.params  # the controls followed the model
    assert window.params_panel.fields["strength"].get() == 0.5
    assert dialog.paint_button.isEnabled() and dialog.paint_button.text() == PAINT_TEXT

    dialog.paint_button.click()
    assert window.model.is_running
    assert window.model.job.params == chosen.params  # the full-size run, with the tile's settings
    assert not dialog.isVisible()
    wait_for_run(qtbot, window)
    finished = window.model.history[-1].finished
    assert finished.job.params.strength == 0.5 and finished.image.shape[:2] == (36, 48)


def test_paint_while_the_grid_is_painting_stops_it_first(make_window, images, qtbot) -> None:
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, size=40, iterations=2)
    _small(window)
    window.variations.tile_iterations = 30  # slow enough to be caught in the middle
    window.variations.start()
    dialog = window.variations.dialog
    qtbot.waitUntil(lambda: 0 in dialog.made, timeout=60_000)
    dialog.click_tile(0)
    dialog.paint_button.click()
    # The grid stops within an iteration, then the run starts with the chosen settings.
    qtbot.waitUntil(lambda: window.model.is_running or len(window.model.history) > 0, timeout=60_000)
    assert not window.variations.is_painting
    assert window.model.job.params == dialog.variations[0].params
    assert len(dialog.made) < 4
    wait_for_run(qtbot, window)


def test_a_run_started_elsewhere_stops_the_grid_and_new_inputs_make_it_stale(
    make_window, images, qtbot
) -> None:
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, size=40, iterations=2)
    _small(window)
    window.variations.start()
    dialog = window.variations.dialog
    _wait_for_grid(qtbot, window)
    assert all(t.isEnabled() for t in dialog.tiles)
    window.content_pane.set_image(window.importer.from_path(images["style2"]))
    assert not any(t.isEnabled() for t in dialog.tiles) and "changed" in dialog.status.text()

    window.variations.start()
    qtbot.waitUntil(lambda: window.variations.is_painting, timeout=5_000)
    window.start_run()
    qtbot.waitUntil(lambda: not window.variations.is_painting, timeout=60_000)
    assert "Stopped" in dialog.status.text() or "variations in" in dialog.status.text()
    wait_for_run(qtbot, window)


def test_an_instant_job_offers_no_seed_and_its_tiles_are_drafts(make_window, images, qtbot) -> None:
    window = make_window()
    if window.drafts.available is False:
        return
    load_inputs(window, images)
    tiny_params(window, size=48)
    params = window.params_panel.last_valid
    from engine.presets import apply_preset

    window.params_panel.set_params(apply_preset(params, "instant"))
    _small(window, 5)
    window.variations.start()
    _wait_for_grid(qtbot, window)
    dialog = window.variations.dialog
    assert len(dialog.made) == 5
    tiles: list[Tile] = [dialog.made[i] for i in range(5)]
    assert tiles[0].finished.job.params.method is Method.INSTANT
    assert all("seed" not in t.variation.changed for t in tiles)


def test_a_long_label_is_shortened_on_its_tile_and_whole_in_its_tooltip(qtbot) -> None:
    from engine.params import StyleParams
    from engine.variations import choose_variations
    from ui.variations import VariationsDialog

    dialog = VariationsDialog()
    qtbot.addWidget(dialog)
    variations = choose_variations(StyleParams(), 6)
    dialog.begin(variations, 128)
    noisy = next(i for i, v in enumerate(variations) if v.label.startswith("Noisy start"))
    assert dialog.tiles[noisy].text().endswith("…") and len(dialog.tiles[noisy].text()) < len(
        variations[noisy].label
    )
    assert variations[noisy].label in dialog.tiles[noisy].toolTip()
    assert dialog.tiles[0].text() == "As set"
