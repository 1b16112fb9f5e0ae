"""The print size warns when the plan leaves the full size one or two iterations, and says what to change;
Start size shows the size the plan really starts at."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from engine.params import StyleParams
from engine.plan import plan_levels
from ui.param_panel import FULL_SIZE_ENOUGH, ParamPanel, full_size_advice


def _panel(qtbot: Any) -> ParamPanel:
    fits = SimpleNamespace(estimate=1 << 30, available=1 << 34, fits=True, suggestion="", suggested=None)
    panel = ParamPanel(memory_planner=lambda params, size: fits)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_a_print_with_one_full_size_iteration_is_warned_about(qtbot: Any) -> None:
    panel = _panel(qtbot)
    panel.set_params(StyleParams(iterations=20))
    assert panel.full_size_box.isHidden()
    panel.print_unit.setCurrentIndex(panel.print_unit.findData("cm"))
    panel.fields["dpi"].set(300)
    panel.print_length.setValue(30.0)  # 30 cm at 300 dpi: 3543 px
    params = panel.params()
    assert params is not None and params.size == 3543
    assert plan_levels(params)[-1].iterations == 1
    assert not panel.full_size_box.isHidden()
    text = panel.full_size_warning.text()
    assert "Only 1 iteration at the full 3543 px" in text and "Raise Iterations to" in text
    panel.full_size_apply.click()
    fixed = panel.params()
    assert fixed is not None and plan_levels(fixed)[-1].iterations >= FULL_SIZE_ENOUGH
    assert panel.full_size_box.isHidden()


def test_two_is_warned_and_three_is_not() -> None:
    for iterations, warned in ((20, True), (40, True), (50, False), (150, False)):
        params = StyleParams(size=2048, iterations=iterations)
        top = plan_levels(params)[-1].iterations
        assert bool(full_size_advice(params).text) == (top <= 2) == warned, (iterations, top)


def test_one_level_and_explicit_levels(qtbot: Any) -> None:
    assert full_size_advice(StyleParams(size=512, iterations=2, coarse_to_fine=False)).text == ""
    advice = full_size_advice(StyleParams(size=1024, levels=((256, 100), (512, 40), (1024, 1))))
    assert "Levels" in advice.text and advice.iterations is None


def test_start_size_shows_the_size_the_plan_starts_at(qtbot: Any) -> None:
    panel = _panel(qtbot)
    box = panel.fields["start_size"].box  # type: ignore[attr-defined]
    panel.set_params(StyleParams(size=192, start_size=256))
    assert box.value() == 256 and box.text() == "256 px · 192 px used"
    panel.set_params(StyleParams(size=1024, start_size=256))
    assert box.text() == "256 px"
