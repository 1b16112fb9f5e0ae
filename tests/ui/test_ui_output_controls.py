"""The window's output controls: print size, the coarse-to-fine plan and the memory estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from uihelpers import drop, file_mime

import engine.device
from engine.params import Optimizer, StyleParams
from ui.param_panel import ParamPanel

GIB = 1 << 30


@pytest.fixture
def panel(qtbot: Any) -> ParamPanel:
    widget = ParamPanel()
    qtbot.addWidget(widget)
    return widget


def test_print_size_sets_the_pixels_and_the_resolution(panel: ParamPanel) -> None:
    panel.fields["dpi"].box.setValue(300)
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("cm"))
    panel.print_length.setValue(30.0)
    params = panel.params()
    assert params is not None
    assert params.size == 3543 and params.dpi == 300
    assert panel.fields["size"].get() == 3543


def test_a_print_length_without_a_resolution_uses_300_dpi(panel: ParamPanel) -> None:
    assert panel.params().dpi == 0
    assert panel.print_length.value() == 0  # "Not set"
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("in"))
    panel.print_length.setValue(10.0)
    assert (panel.params().size, panel.params().dpi) == (3000, 300)


def test_changing_the_pixels_or_the_resolution_updates_the_print_length(panel: ParamPanel) -> None:
    panel.set_params(StyleParams(size=3000, dpi=300))
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("in"))
    assert panel.print_length.value() == pytest.approx(10.0)
    panel.fields["size"].box.setValue(1500)
    assert panel.print_length.value() == pytest.approx(5.0)
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("cm"))
    assert panel.print_length.value() == pytest.approx(12.7)
    panel.fields["dpi"].box.setValue(150)
    assert panel.params().size == 1500  # the resolution does not change the pixels
    assert panel.print_length.value() == pytest.approx(25.4)
    panel.fields["dpi"].box.setValue(0)
    assert panel.print_length.text() == "Not set"


def test_a_print_size_too_large_is_reported(panel: ParamPanel) -> None:
    panel.fields["dpi"].box.setValue(1200)
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("in"))
    panel.print_length.setValue(100.0)
    assert panel.params() is None
    assert "size" in panel.error and not panel.error_label.isHidden()


def test_the_plan_label_shows_the_coarse_to_fine_passes(panel: ParamPanel) -> None:
    panel.set_params(StyleParams(size=1024, iterations=300, start_size=256, coarse_to_fine=True))
    panel.refresh_estimates()
    assert panel.levels_plan.text() == "256 px × 173 → 512 px × 85 → 1024 px × 42"
    assert "256:173, 512:85, 1024:42" in panel.fields["levels"].edit.placeholderText()
    # Live: a change schedules the update, which lands after a short pause.
    panel.fields["coarse_to_fine"].check.setChecked(False)
    assert panel._estimate_timer.isActive()
    panel.refresh_estimates()
    assert panel.levels_plan.text() == "1024 px × 300"


def test_explicit_levels_round_trip_and_invalid_text_is_reported(panel: ParamPanel) -> None:
    edit = panel.fields["levels"].edit
    edit.setText("256:100, 512:50")
    assert panel.params() is not None
    assert panel.params().levels == ((256, 100), (512, 50))
    panel.refresh_estimates()
    assert panel.levels_plan.text() == "256 px × 100 → 512 px × 50"
    assert not panel.fields["start_size"].box.isEnabled()
    panel.set_params(StyleParams(levels=((128, 20), (1024, 10))))
    assert edit.text() == "128:20, 1024:10"
    edit.setText("512:50, 256:abc")
    assert panel.params() is None
    assert "level iterations" in panel.error and not panel.error_label.isHidden()
    edit.setText("")
    assert panel.params() is not None and panel.params().levels == ()


def test_invalid_levels_block_the_run(make_window: Any, images: dict[str, Path], qtbot: Any) -> None:
    window = make_window()
    drop(window.content_pane, file_mime(images["content"]))
    drop(window.style_list, file_mime(images["style"]))
    assert window.run_button.isEnabled()
    # The window's panel estimates once the device probe has loaded the engine.
    panel = window.params_panel
    qtbot.waitUntil(lambda: panel.memory_label.text().startswith("Memory: about"), timeout=10_000)
    assert "4:3" not in panel.memory_label.text()  # the photo is loaded
    assert panel.levels_plan.text() == "256 px × 100 → 512 px × 50"
    window.params_panel.fields["levels"].edit.setText("512:50, 256:50")
    assert not window.run_button.isEnabled()
    assert "sizes must grow" in window.readiness.text()


def test_the_memory_estimate_says_whether_the_run_fits(
    panel: ParamPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.device, "available_bytes", lambda device: 16 * GIB)
    panel.set_params(StyleParams(size=256))
    panel.refresh_estimates()
    text = panel.memory_label.text()
    assert text.startswith("Memory: about ") and "of 16.0 GiB available — fits" in text
    assert panel.memory_apply.isHidden()

    monkeypatch.setattr(engine.device, "available_bytes", lambda device: int(2.5 * GIB))
    panel.set_params(StyleParams(size=2048))
    panel.refresh_estimates()
    plan = panel.memory_plan
    assert plan is not None and not plan.fits and plan.suggested is not None
    assert "does not fit: it would fit if you" in panel.memory_label.text()
    assert not panel.memory_apply.isHidden()
    panel.memory_apply.click()
    assert panel.params() == plan.suggested
    assert panel.params().optimizer is Optimizer.ADAM and panel.params().tile_size > 0
    panel.refresh_estimates()
    assert panel.memory_label.text().endswith("fits (for a 4:3 photo)")


def test_the_memory_estimate_follows_the_photo(panel: ParamPanel) -> None:
    seen: list[tuple[int, int]] = []

    def planner(params: StyleParams, content: tuple[int, int]) -> Any:
        seen.append(content)
        return engine.memory.plan_memory(params, content, "cpu", available=64 * GIB)

    panel.memory_planner = planner
    panel.refresh_estimates()
    assert seen[-1] == (4, 3)
    panel.set_content_size((300, 900))
    assert panel._estimate_timer.isActive()
    panel.refresh_estimates()
    assert seen[-1] == (300, 900)
    assert "fits" in panel.memory_label.text() and "4:3" not in panel.memory_label.text()
