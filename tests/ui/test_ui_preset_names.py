"""The preset combo: group headers, thumbnail icons, look names; Balanced applies the default preset."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel

from engine.params import StyleParams
from engine.presets import PRESET_GROUPS, PRESETS, apply_preset
from ui.param_panel import ParamPanel


@pytest.fixture
def panel(qtbot: Any) -> ParamPanel:
    widget = ParamPanel()
    qtbot.addWidget(widget)
    return widget


def test_combo_has_group_headers_and_icons(panel: ParamPanel) -> None:
    combo = panel.preset_combo
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    texts = [combo.itemText(i) for i in range(combo.count())]
    for group in PRESET_GROUPS:
        index = texts.index(group)
        assert combo.itemData(index) is None
        assert not model.item(index).isEnabled() and not model.item(index).isSelectable()
    assert texts.index(PRESET_GROUPS[0]) == 0
    for preset in PRESETS.values():
        index = combo.findData(preset.name)
        assert index >= 0
        assert combo.itemText(index) == preset.display_name
        assert not combo.itemIcon(index).isNull()
        assert model.item(index).isEnabled()
        assert preset.description in combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert texts.index(PRESET_GROUPS[0]) < combo.findData("default") < texts.index(PRESET_GROUPS[1])
    assert texts.index(PRESET_GROUPS[1]) < combo.findData("gatys2016")


def test_selecting_balanced_applies_the_default_preset(panel: ParamPanel) -> None:
    start = apply_preset(StyleParams().replace(size=300, seed=7), "gatys2016")
    panel.set_params(start)
    assert panel.preset_combo.currentData() == "gatys2016"
    index = panel.preset_combo.findText("Balanced")
    assert panel.preset_combo.itemData(index) == "default"
    panel.preset_combo.setCurrentIndex(index)
    assert panel.params() == apply_preset(start, "default")
    assert panel.params().preset == PRESETS["default"].params.preset
    assert panel.preset_combo.currentText() == "Balanced"
    assert panel.preset_state.text() == ""
