"""The parameter panel is bound to StyleParams: presets, validation, tooltips."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QSlider, QWidget

from engine.params import Optimizer, StyleParams
from engine.presets import PRESETS, apply_preset
from ui.fields import SciSpinBox, _ladder
from ui.param_panel import ParamPanel


@pytest.fixture
def panel(qtbot: Any) -> ParamPanel:
    widget = ParamPanel()
    qtbot.addWidget(widget)
    return widget


def test_every_field_has_an_editor_and_the_value_round_trips(panel: ParamPanel) -> None:
    names = {f.name for f in dataclasses.fields(StyleParams)} - {"preset"}
    assert names == set(panel.fields)
    for preset in PRESETS.values():
        panel.set_params(preset.params)
        assert panel.params() == preset.params
        # Reading the controls back gives the same value as what was set.
        assert StyleParams(**panel.raw_values()) == preset.params


def test_changing_the_preset_updates_the_controls(panel: ParamPanel) -> None:
    start = StyleParams().replace(size=300, seed=7)
    panel.set_params(start)
    index = panel.preset_combo.findData("gatys2016")
    panel.preset_combo.setCurrentIndex(index)
    expected = apply_preset(start, "gatys2016")
    assert panel.params() == expected
    assert panel.fields["iterations"].get() == expected.iterations
    assert panel.fields["init"].get() == expected.init
    assert panel.fields["style_weight"].get() == pytest.approx(expected.style_weight)
    assert panel.fields["style_layers"].get() == expected.style_layers
    # Kept across presets: the artist's size and seed.
    assert panel.fields["size"].get() == 300
    assert panel.fields["seed"].get() == 7
    assert "Gatys" in panel.preset_description.text() or panel.preset_description.text()


def test_editing_a_control_marks_the_preset_modified(panel: ParamPanel, qtbot: Any) -> None:
    assert panel.preset_state.text() == ""
    panel.fields["style_weight"].box.setValue(123.0)
    assert panel.params() is not None and panel.params().style_weight == 123.0
    assert panel.preset_state.text() == "modified"


def test_invalid_combination_shows_the_engine_message_and_no_value(panel: ParamPanel) -> None:
    seen: list[Any] = []
    panel.paramsChanged.connect(seen.append)
    panel.fields["content_weight"].box.setValue(0.0)
    panel.fields["style_weight"].box.setValue(0.0)
    assert panel.params() is None
    assert "cannot both be zero" in panel.error
    assert not panel.error_label.isHidden()
    assert seen[-1] is None
    panel.fields["style_weight"].box.setValue(5.0)
    assert panel.params() is not None
    assert panel.error_label.isHidden()


def test_start_image_without_a_file_is_invalid(panel: ParamPanel) -> None:
    combo = panel.fields["init"].combo
    combo.setCurrentIndex(combo.findData("image"))
    assert panel.params() is None
    assert "init image" in panel.error
    assert panel.fields["init_image"].editor.isEnabled()


def test_dependent_controls_follow_the_optimiser(panel: ParamPanel) -> None:
    panel.set_params(StyleParams(optimizer=Optimizer.LBFGS))
    assert not panel.fields["learning_rate"].box.isEnabled()
    assert panel.fields["lbfgs_history"].box.isEnabled()
    panel.set_params(StyleParams(optimizer=Optimizer.ADAM))
    assert panel.fields["learning_rate"].box.isEnabled()
    assert not panel.fields["lbfgs_history"].box.isEnabled()


def test_layer_editor_adds_and_removes_layers(panel: ParamPanel) -> None:
    field = panel.fields["style_layers"]
    before = field.get()
    index = field.add_combo.findData("relu3_2")
    field.add_combo.activated.emit(index)
    assert ("relu3_2", 1.0) in panel.params().style_layers
    assert len(panel.params().style_layers) == len(before) + 1
    field._remove("relu3_2")
    assert panel.params().style_layers == before


def test_seed_accepts_64_bit_values_and_new_seed_changes_it(panel: ParamPanel) -> None:
    panel.set_params(StyleParams(seed=2**40 + 5))
    assert panel.params().seed == 2**40 + 5
    panel.fields["seed"].new_button.click()
    assert panel.params().seed != 2**40 + 5


def test_weights_spin_box_reads_scientific_notation_and_steps_on_a_1_2_5_ladder(qtbot: Any) -> None:
    box = SciSpinBox()
    qtbot.addWidget(box)
    assert box.valueFromText("1e6") == 1e6
    box.setValue(10.0)
    box.stepBy(1)
    assert box.value() == 20.0
    box.stepBy(-2)
    assert box.value() == 5.0
    assert _ladder(0.0, up=True, floor=0.0) == pytest.approx(1e-3)
    assert box.textFromValue(1e9) == "1e9"


def _controls(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QSlider)
    # qt_* children are Qt's own internals (a toolbar's overflow button).
    return [
        w for w in root.findChildren(QWidget) if isinstance(w, kinds) and not w.objectName().startswith("qt_")
    ]


def _described(control: QWidget) -> bool:
    """Its own tooltip, or, for a part of a compound control (a spin box's editor, a line edit's
    clear button), its owner's."""
    if control.toolTip().strip():
        return True
    parent = control.parentWidget()
    return isinstance(parent, (QAbstractSpinBox, QComboBox, QLineEdit)) and bool(parent.toolTip().strip())


def test_every_control_in_the_window_has_a_tooltip(make_window: Any) -> None:
    window = make_window()
    window.params_panel.advanced.set_open(True)
    missing = [
        f"{type(c).__name__} in {type(c.parentWidget()).__name__} {c.objectName()!r}"
        for c in _controls(window)
        if not _described(c)
    ]
    assert not missing, missing
    for action in window.actions():
        assert action.toolTip().strip(), action.text()
