"""Persisted settings round-trip in an isolated place; crash recovery offers what was autosaved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from uihelpers import load_inputs, tiny_params, wait_for_run

from engine.metadata import read_recipe
from engine.params import StyleJob, StyleParams
from engine.presets import apply_preset
from engine.records import Progress
from ui.autosave import AutosaveStore
from ui.settings import AppLocations, Settings
from ui.worker import Throttle


def test_settings_round_trip_in_an_isolated_location(
    make_window: Any, locations: AppLocations, images: dict[str, Path], prompter: Any
) -> None:
    window = make_window()
    params = apply_preset(StyleParams(), "deeplearning-ai").replace(seed=99, size=640)
    window.params_panel.set_params(params)
    window.params_panel.advanced.set_open(True)
    window.resize(780, 560)
    window.move(12, 34)
    saved_size = window.size()
    prompter.open_answers = [[images["content"]]]
    window.open_content()
    window.close()

    ini = locations.config_dir / "painterly.ini"
    assert ini.is_file()
    assert Settings(locations).file_name == str(ini)

    again = make_window()
    assert again.params_panel.params() == params
    assert again.params_panel.advanced.is_open
    # The offscreen test screen is small; a saved size is restored as far as the screen allows.
    available = again.screen().availableGeometry().size()
    expected = saved_size.boundedTo(available)
    assert abs(again.width() - expected.width()) <= 4 and abs(again.height() - expected.height()) <= 4
    assert again.settings.geometry() == window.saveGeometry()
    assert again.settings.last_folder("content") == images["content"].parent


def test_environment_variable_moves_every_location(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PAINTERLY_CONFIG_DIR", str(tmp_path / "portable"))
    locations = AppLocations.from_environment()
    assert locations == AppLocations.under(tmp_path / "portable")
    settings = Settings(locations)
    settings.set_last_params(StyleParams(seed=5))
    settings.sync()
    assert Settings(locations).last_params() == StyleParams(seed=5)


def test_damaged_saved_parameters_fall_back_to_defaults(locations: AppLocations) -> None:
    settings = Settings(locations)
    settings._qs.setValue("params/last", json.dumps({"size": -3}))
    assert settings.last_params() is None
    settings._qs.setValue("params/last", "{not json")
    assert settings.last_params() is None


def _leave_an_autosave(locations: AppLocations, images: dict[str, Path]) -> AutosaveStore:
    """What a crash mid-run leaves behind: the autosave the worker wrote, never cleaned up."""
    store = AutosaveStore(locations.data_dir)
    job = StyleJob(images["content"], (images["style"],), StyleParams(size=32, seed=321, style_weight=55.0))
    pixels = np.full((24, 32, 3), 90, dtype=np.uint8)
    store.snapshot(job, pixels, Progress(17, 300, 4.0, {"total": 1.0}, pixels))
    return store


def test_crash_recovery_offer_restores_the_image_and_settings(
    make_window: Any, locations: AppLocations, images: dict[str, Path], prompter: Any
) -> None:
    store = _leave_an_autosave(locations, images)
    assert store.image_path.is_file() and store.info_path.is_file()
    assert read_recipe(store.image_path)["iterations"] == 17

    prompter.ask_answer = True
    window = make_window(restore_settings=False)
    assert window.check_recovery()
    assert prompter.asked and "iteration 17" in prompter.asked[-1][1]
    entry = window.history.entries[-1]
    assert entry.label == "recovered"
    assert window.result.view.has_result
    assert window.params_panel.params().seed == 321
    assert window.params_panel.params().style_weight == 55.0
    assert window.content_pane.image is not None and window.content_pane.image.path == images["content"]
    assert not store.image_path.exists() and not store.info_path.exists()


def test_declining_recovery_discards_the_autosave(
    make_window: Any, locations: AppLocations, images: dict[str, Path], prompter: Any
) -> None:
    store = _leave_an_autosave(locations, images)
    prompter.ask_answer = False
    window = make_window(restore_settings=False)
    assert not window.check_recovery()
    assert not window.history.entries
    assert not store.image_path.exists()


def test_no_offer_after_a_clean_exit(make_window: Any, prompter: Any) -> None:
    window = make_window()
    assert not window.check_recovery()
    assert not prompter.asked


def test_autosave_is_written_during_a_run_and_removed_after(
    make_window: Any, images: dict[str, Path], qtbot: Any
) -> None:
    window = make_window(
        autosave_interval=0.0, throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0)
    )
    load_inputs(window, images)
    tiny_params(window, iterations=2000)
    window.start_run()
    qtbot.waitUntil(
        lambda: window.autosave.writes > 0 and window.autosave.image_path.exists(), timeout=30_000
    )
    recipe = read_recipe(window.autosave.image_path)
    assert recipe["job"]["params"]["iterations"] == 2000
    assert json.loads(window.autosave.info_path.read_text())["iteration"] >= 1
    window.stop_run()
    wait_for_run(qtbot, window)
    # Once the worker is done no temporary file is left behind: each write was atomic. (During the
    # run one may exist for a moment, while a write is in flight.)
    assert not [p.name for p in window.autosave.folder.iterdir() if p.name.startswith(".painterly-")]
    assert not window.autosave.image_path.exists()
    assert not window.autosave.info_path.exists()
