"""Editors for single StyleParams fields.

Each ``Field`` owns the widgets for one dataclass field and converts between
the widgets and the field's value; ``ParamPanel`` builds them from the
dataclass, so a field the engine adds later gets an editor without UI work.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRegularExpression, QSize, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.params import VGG19_LAYERS
from ui.qtutil import format_number, icon


@dataclass(frozen=True)
class FieldSpec:
    label: str
    tooltip: str
    group: str = "advanced"
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    decimals: int = 3
    suffix: str = ""
    # "sci": weights spanning many decades (typed as 1e6, stepped 1-2-5); "percent": 0..1 shown as %.
    style: str = ""
    special: str = ""  # text shown at the minimum (e.g. "no limit")


class Field(QObject):
    """One parameter's editor: ``widget`` goes in the form; ``controls`` are every interactive part."""

    changed = Signal()

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__()
        self.name = name
        self.spec = spec
        self.widget: QWidget = QWidget()

    def get(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def set(self, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def controls(self) -> list[QWidget]:
        return [self.widget]

    def set_enabled(self, enabled: bool) -> None:
        for control in self.controls():
            control.setEnabled(enabled)

    def _tip(self, *widgets: QWidget) -> None:
        for widget in widgets:
            widget.setToolTip(self.spec.tooltip)


class SciSpinBox(QDoubleSpinBox):
    """A spin box for weights that span many decades: accepts '1e6', steps along 1-2-5-10."""

    def __init__(self, minimum: float = 0.0, maximum: float = 1e15, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Enough decimals that QDoubleSpinBox's rounding never eats a small weight.
        self.setDecimals(15)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(True)
        self.setAccelerated(True)

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return format_number(value)

    def set_exact(self, value: float) -> None:
        self.setValue(value)
        self._exact = (float(value), self.value())

    def exact_value(self) -> float:
        """The value last set, unless the user changed it since (the box rounds to its decimals)."""
        exact = getattr(self, "_exact", None)
        if exact is not None and self.value() == exact[1]:
            return exact[0]
        return float(self.value())

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip().replace(",", ".")
        try:
            value = float(stripped)
        except ValueError:
            partial = QRegularExpression(r"^[0-9]*\.?[0-9]*([eE][-+]?[0-9]*)?$")
            state = (
                QValidator.State.Intermediate
                if partial.match(stripped).hasMatch()
                else QValidator.State.Invalid
            )
            return state, text, pos
        if not math.isfinite(value) or not self.minimum() <= value <= self.maximum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        value = self.value()
        for _ in range(abs(steps)):
            value = _ladder(value, up=steps > 0, floor=max(self.minimum(), 0.0))
        self.setValue(max(self.minimum(), min(self.maximum(), value)))

    def sizeHint(self) -> QSize:  # noqa: N802
        hint = super().sizeHint()
        return QSize(max(hint.width(), self.fontMetrics().horizontalAdvance("1.2345e12") + 36), hint.height())


def _ladder(value: float, *, up: bool, floor: float) -> float:
    """The next value on the 1, 2, 5, 10, 20, ... ladder; zero steps to 0.001 and back."""
    if value <= 0:
        return 1e-3 if up else floor
    exponent = math.floor(math.log10(value))
    marks = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 5)]
    if up:
        bigger = [m for m in marks if m > value * (1 + 1e-9)]
        return min(bigger)
    smaller = [m for m in marks if m < value * (1 - 1e-9)]
    result = max(smaller)
    return floor if result < 1e-3 and floor == 0 else result


class NumberField(Field):
    def __init__(self, name: str, spec: FieldSpec, integer: bool) -> None:
        super().__init__(name, spec)
        self.integer = integer
        if spec.style == "sci":
            box: QSpinBox | QDoubleSpinBox = SciSpinBox(spec.minimum or 0.0, spec.maximum or 1e15)
        elif integer:
            box = QSpinBox()
            box.setRange(int(spec.minimum if spec.minimum is not None else 0), int(spec.maximum or 2**31 - 1))
            box.setSingleStep(int(spec.step or 1))
        else:
            box = QDoubleSpinBox()
            box.setDecimals(spec.decimals)
            box.setRange(spec.minimum if spec.minimum is not None else 0.0, spec.maximum or 1e9)
            box.setSingleStep(spec.step or 0.1)
        if spec.suffix:
            box.setSuffix(spec.suffix)
        if spec.special:
            box.setSpecialValueText(spec.special)
        box.setAccelerated(True)
        box.setMinimumWidth(96)
        box.valueChanged.connect(self.changed)
        self.box = box
        self.widget = box
        self._exact: Any = None
        self._shown: float | None = None
        self._tip(box)

    def get(self) -> Any:
        value = self.box.value()
        if self._exact is not None and value == self._shown:
            # Untouched since set(): the exact value, not the spin box's rounding of it (a recipe
            # must come back bit for bit).
            return self._exact
        if self.spec.style == "percent":
            return round(value / 100.0, 6)
        return int(value) if self.integer else float(value)

    def set(self, value: Any) -> None:
        shown = float(value) * 100.0 if self.spec.style == "percent" else value
        self.box.blockSignals(True)
        self.box.setValue(int(shown) if isinstance(self.box, QSpinBox) else float(shown))
        self.box.blockSignals(False)
        self._exact = value
        self._shown = self.box.value()


class SliderField(Field):
    """A 0..1 amount as a slider with a spin box beside it (the slider in hundredths)."""

    STEPS = 100

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        low = spec.minimum if spec.minimum is not None else 0.0
        high = spec.maximum if spec.maximum is not None else 1.0
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(low * self.STEPS), round(high * self.STEPS))
        self.slider.setPageStep(10)
        self.box = QDoubleSpinBox()
        self.box.setDecimals(spec.decimals)
        self.box.setRange(low, high)
        self.box.setSingleStep(spec.step or 0.05)
        self.box.setMinimumWidth(72)
        self.slider.valueChanged.connect(self._on_slider)
        self.box.valueChanged.connect(self._on_box)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.slider, 1)
        row.addWidget(self.box)
        self.widget = QWidget()
        self.widget.setLayout(row)
        self._exact: Any = None
        self._shown: float | None = None
        self._tip(self.widget, self.slider, self.box)

    def controls(self) -> list[QWidget]:
        return [self.slider, self.box]

    def _on_slider(self, value: int) -> None:
        self.box.setValue(value / self.STEPS)  # the box says changed

    def _on_box(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * self.STEPS))
        self.slider.blockSignals(False)
        self.changed.emit()

    def get(self) -> Any:
        value = self.box.value()
        if self._exact is not None and value == self._shown:
            return self._exact  # untouched since set(): exactly what the recipe said
        return float(value)

    def set(self, value: Any) -> None:
        for widget in (self.slider, self.box):
            widget.blockSignals(True)
        self.box.setValue(float(value))
        self.slider.setValue(round(float(value) * self.STEPS))
        for widget in (self.slider, self.box):
            widget.blockSignals(False)
        self._exact = value
        self._shown = self.box.value()


# Words for enum values, so combo boxes read as choices rather than code.
ENUM_TEXT: dict[str, str] = {
    "lbfgs": "L-BFGS",
    "adam": "Adam",
    "content": "The photo",
    "noise": "Noise",
    "image": "Another image…",
    "draft": "Instant draft",
    "optimise": "Optimise the pixels (Gatys et al.)",
    "instant": "Instant network (one pass)",
    "avg": "Average (smoother)",
    "max": "Max (crisper)",
    "auto": "Automatic",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (Metal)",
    "float32": "32-bit float",
    "bfloat16": "bfloat16 (GPU)",
    "float16": "float16 (GPU)",
    "normalized": "Normalised (Painterly)",
    "gatys": "Gatys et al. 2016",
    "deeplearning-ai": "deeplearning.ai course",
    "udacity": "Udacity PyTorch tutorial",
    "keras": "TensorFlow / Keras tutorial",
    "gram": "Gram matrices (Gatys et al.)",
    "mean-covariance": "Mean and covariance (Wasserstein-2)",
    "isotropic": "Isotropic (keeps edges)",
    "squared-mean": "Squared, mean (TF report)",
    "abs-sum": "Absolute, sum (tf.image)",
    "painting": "The painting's",
    "photo": "The photo's",
    "match": "The painting, recoloured to the photo",
}


class EnumField(Field):
    def __init__(self, name: str, spec: FieldSpec, enum_type: type[StrEnum]) -> None:
        super().__init__(name, spec)
        self.enum_type = enum_type
        self.combo = QComboBox()
        for member in enum_type:
            self.combo.addItem(ENUM_TEXT.get(member.value, member.value), member.value)
        self.combo.currentIndexChanged.connect(self.changed)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.widget = self.combo
        self._tip(self.combo)

    def get(self) -> Any:
        return self.enum_type(self.combo.currentData())

    def set(self, value: Any) -> None:
        index = self.combo.findData(str(value))
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)

    def mark_unavailable(self, available: Sequence[str], why: str) -> None:
        """Grey out choices this computer cannot run (the value may still come from a recipe)."""
        model = self.combo.model()
        for index in range(self.combo.count()):
            value = self.combo.itemData(index)
            item = model.item(index) if hasattr(model, "item") else None
            if item is None:
                continue
            usable = value in available
            item.setEnabled(usable)
            base = ENUM_TEXT.get(value, value)
            self.combo.setItemText(index, base if usable else f"{base} — not available")
            self.combo.setItemData(index, None if usable else why, Qt.ItemDataRole.ToolTipRole)


class BoolField(Field):
    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        self.check = QCheckBox(spec.special or "On")
        self.check.toggled.connect(self.changed)
        self.widget = self.check
        self._tip(self.check)

    def get(self) -> Any:
        return self.check.isChecked()

    def set(self, value: Any) -> None:
        self.check.blockSignals(True)
        self.check.setChecked(bool(value))
        self.check.blockSignals(False)


class PairsField(Field):
    """Pairs of whole numbers typed as 'a:b, c:d' (coarse-to-fine levels: size:iterations)."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(spec.special or "Automatic")
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.changed)
        self.widget = self.edit
        self._tip(self.edit)

    def get(self) -> Any:
        pairs = []
        for chunk in self.edit.text().replace(";", ",").split(","):
            chunk = chunk.strip()
            if not chunk:
                continue
            parts = [p.strip() for p in chunk.replace("x", ":").replace("×", ":").split(":")]
            # Unparseable text goes to the engine as is, so its message names the problem.
            pairs.append(tuple(int(p) if p.isdigit() else p for p in parts))
        return tuple(pairs)

    def set(self, value: Any) -> None:
        self.edit.blockSignals(True)
        self.edit.setText(", ".join(":".join(str(v) for v in pair) for pair in value or ()))
        self.edit.blockSignals(False)


class JsonField(Field):
    """Fallback for a field type the panel does not know yet: its value as JSON text."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        self.edit = QLineEdit()
        self.edit.textChanged.connect(self.changed)
        self.widget = self.edit
        self._tip(self.edit)

    def get(self) -> Any:
        try:
            return json.loads(self.edit.text())
        except ValueError:
            return self.edit.text()

    def set(self, value: Any) -> None:
        self.edit.blockSignals(True)
        self.edit.setText(json.dumps(value, default=str))
        self.edit.blockSignals(False)


class SeedField(Field):
    """Seeds go up to 2**63 - 1, beyond QSpinBox's int32, so this is a validated line edit."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        self.edit = QLineEdit("0")
        self.edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"^[0-9]{1,19}$")))
        self.edit.textChanged.connect(self.changed)
        self.new_button = QToolButton()
        self.new_button.setIcon(icon("dice"))
        self.new_button.setText("New seed")
        self.new_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.new_button.setToolTip("Pick a random seed: the next run gives a different variation")
        self.new_button.clicked.connect(self.new_seed)
        self._tip(self.edit)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.new_button)
        self.widget = QWidget()
        self.widget.setLayout(row)
        self.widget.setToolTip(spec.tooltip)

    def controls(self) -> list[QWidget]:
        return [self.edit, self.new_button]

    def new_seed(self) -> None:
        # Within 32 bits: short enough to read out and type back in.
        self.edit.setText(str(random.randrange(1, 2**32)))

    def get(self) -> Any:
        text = self.edit.text().strip()
        return int(text) if text.isdigit() else text

    def set(self, value: Any) -> None:
        self.edit.blockSignals(True)
        self.edit.setText(str(value))
        self.edit.blockSignals(False)


class PathField(Field):
    """A file path (or a keyword such as 'default'), typed or chosen with a dialog."""

    def __init__(
        self,
        name: str,
        spec: FieldSpec,
        choose: Callable[[str], Path | None],
        keywords: Sequence[str] = (),
        optional: bool = True,
    ) -> None:
        super().__init__(name, spec)
        self.optional = optional
        self.keywords = tuple(keywords)
        if keywords:
            self.combo: QComboBox | None = QComboBox()
            self.combo.setEditable(True)
            self.combo.addItems(list(keywords))
            self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            self.combo.currentTextChanged.connect(self.changed)
            editor: QWidget = self.combo
            self.edit = None
        else:
            self.combo = None
            self.edit = QLineEdit()
            self.edit.setPlaceholderText("No file chosen")
            self.edit.textChanged.connect(self.changed)
            self.edit.setClearButtonEnabled(True)
            editor = self.edit
        editor.setMinimumWidth(80)
        self.browse = QToolButton()
        self.browse.setIcon(icon("open"))
        self.browse.setToolTip(f"Choose a file for: {spec.label.lower()}")
        self.browse.clicked.connect(lambda: self._browse(choose))
        self._tip(editor)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(editor, 1)
        row.addWidget(self.browse)
        self.editor = editor
        self.widget = QWidget()
        self.widget.setLayout(row)
        self.widget.setToolTip(spec.tooltip)

    def controls(self) -> list[QWidget]:
        return [self.editor, self.browse]

    def _browse(self, choose: Callable[[str], Path | None]) -> None:
        path = choose(self.spec.label)
        if path is not None:
            self.set(str(path))
            self.changed.emit()

    def _text(self) -> str:
        if self.combo is not None:
            return self.combo.currentText().strip()
        assert self.edit is not None
        return self.edit.text().strip()

    def get(self) -> Any:
        text = self._text()
        return None if not text and self.optional else text

    def set(self, value: Any) -> None:
        text = "" if value is None else str(value)
        if self.combo is not None:
            self.combo.blockSignals(True)
            self.combo.setCurrentText(text)
            self.combo.blockSignals(False)
        elif self.edit is not None:
            self.edit.blockSignals(True)
            self.edit.setText(text)
            self.edit.blockSignals(False)


class LayersField(Field):
    """Layer names with a weight each; add from the network's layers, remove any."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        super().__init__(name, spec)
        self.widget = QWidget()
        self.widget.setToolTip(spec.tooltip)
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(1, 1)
        self.add_combo = QComboBox()
        self.add_combo.setToolTip(f"Add a network layer to the {spec.label.lower()}: {spec.tooltip}")
        self.add_combo.activated.connect(self._on_add)
        outer = QVBoxLayout(self.widget)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        outer.addLayout(self._grid)
        outer.addWidget(self.add_combo)
        self._rows: list[tuple[str, QLabel, SciSpinBox, QToolButton]] = []
        self._refresh_add()

    def controls(self) -> list[QWidget]:
        widgets: list[QWidget] = [self.add_combo]
        for _, label, box, remove in self._rows:
            widgets.extend((label, box, remove))
        return widgets

    def get(self) -> Any:
        return tuple((layer, box.exact_value()) for layer, _, box, _ in self._rows)

    def set(self, value: Any) -> None:
        for _, label, box, remove in self._rows:
            for widget in (label, box, remove):
                self._grid.removeWidget(widget)
                widget.deleteLater()
        self._rows = []
        for layer, weight in value:
            self._add_row(str(layer), float(weight))
        self._refresh_add()

    def _add_row(self, layer: str, weight: float) -> None:
        label = QLabel(layer)
        label.setToolTip(f"{layer}: {self.spec.tooltip}")
        box = SciSpinBox(0.0, 1e15)
        box.set_exact(weight)
        box.setToolTip(f"Weight of {layer} in the {self.spec.label.lower()}; 0 leaves it out")
        box.valueChanged.connect(self.changed)
        remove = QToolButton()
        remove.setIcon(icon("remove"))
        remove.setIconSize(QSize(12, 12))
        remove.setAutoRaise(True)
        remove.setToolTip(f"Remove {layer} from the {self.spec.label.lower()}")
        remove.clicked.connect(lambda: self._remove(layer))
        row = len(self._rows)
        self._grid.addWidget(label, row, 0)
        self._grid.addWidget(box, row, 1)
        self._grid.addWidget(remove, row, 2)
        self._rows.append((layer, label, box, remove))

    def _remove(self, layer: str) -> None:
        self.set(tuple((name, w) for name, w in self.get() if name != layer))
        self.changed.emit()

    def _on_add(self, index: int) -> None:
        layer = self.add_combo.itemData(index)
        if layer:
            layers = dict(self.get())
            layers[layer] = 1.0
            self.set(tuple(sorted(layers.items(), key=lambda item: VGG19_LAYERS.index(item[0]))))
            self.changed.emit()

    def _refresh_add(self) -> None:
        used = {layer for layer, _, _, _ in self._rows}
        self.add_combo.blockSignals(True)
        self.add_combo.clear()
        self.add_combo.addItem("Add a layer…", None)
        for layer in VGG19_LAYERS:
            if layer not in used:
                self.add_combo.addItem(layer, layer)
        self.add_combo.setCurrentIndex(0)
        self.add_combo.blockSignals(False)
