"""The parameter panel: its value is an ``engine.params.StyleParams``.

Controls are generated from the dataclass's fields (their types pick the
editor; ``FIELD_SPECS`` adds words and ranges), so the panel and the engine
cannot drift apart.  Whatever the controls hold is validated by constructing
a ``StyleParams``; its ``InputError`` message is shown under the controls and
the panel reports itself invalid (the window then disables Run).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import typing
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QIcon, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from engine.params import ITERATION_LIMITS, SIZE_LIMITS, WEIGHT_LIMIT, ColorMode, Method, StyleParams
from engine.presets import PRESETS, apply_preset, presets_by_group
from ui.fields import (
    BoolField,
    EnumField,
    Field,
    FieldSpec,
    JsonField,
    LayersField,
    NumberField,
    PairsField,
    PathField,
    SeedField,
    SliderField,
)
from ui.qtutil import RESOURCES, guard_wheel

log = logging.getLogger(__name__)

# Example thumbnails of the presets (benchmarks/preset_thumbnails.py makes them): <name>.png.
PRESET_THUMBNAILS = RESOURCES / "presets"
PRESET_ICON_SIZE = QSize(40, 30)

CM_PER_INCH = 2.54
# Used for the print size when the print resolution is "Not set" and a length is typed.
DEFAULT_DPI = 300.0
# The memory estimate assumes this shape while no photo is loaded.
ASSUMED_CONTENT_SIZE = (4, 3)
MEMORY_DELAY_MS = 250

MemoryPlanner = Callable[[StyleParams, tuple[int, int]], Any]  # -> engine.memory.MemoryPlan


@functools.cache
def _device_for(choice: str) -> Any:
    """choose_device(choice).device, probed once per choice (probing CUDA runs a kernel)."""
    from engine.device import choose_device

    return choose_device(choice).device


def default_memory_planner(params: StyleParams, content_size: tuple[int, int]) -> Any:
    from engine.memory import plan_memory

    return plan_memory(params, content_size, _device_for(str(params.device)))


def describe_levels(params: StyleParams) -> str:
    """The coarse-to-fine passes as '256 px × 100 → 512 px × 50'."""
    from engine.plan import plan_levels

    return " → ".join(f"{level.size} px × {level.iterations}" for level in plan_levels(params))


def levels_text(params: StyleParams) -> str:
    """The passes in the form the Levels field reads: '256:100, 512:50'."""
    from engine.plan import plan_levels

    return ", ".join(f"{level.size}:{level.iterations}" for level in plan_levels(params))


GROUPS: tuple[tuple[str, str], ...] = (
    ("top", ""),  # no box: right under the preset
    ("output", "Output size"),
    ("look", "Look"),
    ("run", "Optimisation"),
    ("device", "Device"),
    ("advanced", "Advanced"),
)

FIELD_SPECS: dict[str, FieldSpec] = {
    "strength": FieldSpec(
        "Strength",
        "How far toward the painting: 0 keeps the photo, 1 the full style. Under Advanced, the style and "
        "content weights set the balance exactly.",
        group="top",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        decimals=2,
    ),
    "method": FieldSpec(
        "Method",
        "How the picture is made: by optimising its pixels against VGG-19 (Gatys et al.: the finest "
        "picture, in minutes), or in one pass of the instant network (Ghiasi et al.: the draft's look, "
        "in about a second). The Instant preset chooses the network.",
        group="run",
    ),
    "size": FieldSpec(
        "Long edge",
        "Long edge of the painting in pixels. Larger pictures get finer brush marks relative to the frame "
        "but take longer: time grows with the number of pixels.",
        group="output",
        minimum=SIZE_LIMITS[0],
        maximum=SIZE_LIMITS[1],
        step=64,
        suffix=" px",
    ),
    "dpi": FieldSpec(
        "Print resolution",
        "Pixels per inch stored in the exported file, so it prints at the intended physical size. "
        "It does not change the pixels.",
        group="output",
        minimum=0.0,
        maximum=10000.0,
        step=50,
        decimals=0,
        suffix=" dpi",
        special="Not set",
    ),
    "coarse_to_fine": FieldSpec(
        "Coarse to fine",
        "Paint a small version first, then enlarge and refine it: big shapes settle early, brush marks "
        "stay coherent across the frame, and large pictures finish much sooner.",
        group="run",
        special="Paint small first",
    ),
    "start_size": FieldSpec(
        "Start size",
        "Long edge of the first, smallest pass when painting coarse to fine. A smaller start gives broader, "
        "more unified strokes.",
        group="run",
        minimum=SIZE_LIMITS[0],
        maximum=SIZE_LIMITS[1],
        step=64,
        suffix=" px",
    ),
    "levels": FieldSpec(
        "Levels",
        "Explicit passes as long edge:iterations, e.g. 256:150, 512:100, replacing the automatic "
        "coarse-to-fine plan. Leave empty for the automatic plan.",
        special="Automatic",
    ),
    "tile_size": FieldSpec(
        "Tile size",
        "Paint very large pictures in tiles of this many pixels so they fit in memory. Automatic tiles only "
        "when memory requires it.",
        minimum=0,
        maximum=SIZE_LIMITS[1],
        step=128,
        suffix=" px",
        special="Automatic",
    ),
    "style_weight": FieldSpec(
        "Style weight",
        "How strongly the painting takes on the style's colours, textures and strokes. Raise it for a "
        "more painted look; lower it to keep more of the photo.",
        group="look",
        style="sci",
        minimum=0.0,
        maximum=WEIGHT_LIMIT,
    ),
    "content_weight": FieldSpec(
        "Content weight",
        "How strongly the painting keeps the photo's shapes and layout. Raise it to keep the subject "
        "recognisable; lower it for a freer, wilder painting.",
        group="look",
        style="sci",
        minimum=0.0,
        maximum=WEIGHT_LIMIT,
    ),
    "tv_weight": FieldSpec(
        "Smoothness",
        "Total-variation weight: penalises pixel-to-pixel jitter. Raise it to remove speckle and noise; "
        "too high smears fine strokes. 0 turns it off.",
        group="look",
        style="sci",
        minimum=0.0,
        maximum=WEIGHT_LIMIT,
    ),
    "colors": FieldSpec(
        "Colours",
        "Whose colours the picture has: the painting's (with its texture), the photo's (the painting "
        "gives only its brush marks and light and shade), or the painting's recoloured to the photo's "
        "palette before painting.",
        group="look",
    ),
    "photo_colors": FieldSpec(
        "Photo colours",
        "After the run, how much of the photo's colours is blended into the picture (0%: none, 100%: "
        "the photo's colours with the painting's light and shade). The slider above the result changes "
        "it on the picture at once, without running again.",
        style="percent",
        minimum=0.0,
        maximum=100.0,
        step=5,
        decimals=0,
        suffix=" %",
    ),
    "style_scale": FieldSpec(
        "Style scale",
        "Size of the style's brush marks relative to the picture: above 1 paints bigger strokes and "
        "motifs, below 1 finer ones.",
        group="look",
        minimum=0.05,
        maximum=8.0,
        step=0.1,
        decimals=2,
        suffix=" ×",
    ),
    "iterations": FieldSpec(
        "Iterations",
        "How many optimisation steps. More steps push the picture further into the style and clean up "
        "noise; with L-BFGS little changes after a few hundred.",
        group="run",
        minimum=ITERATION_LIMITS[0],
        maximum=ITERATION_LIMITS[1],
        step=50,
    ),
    "optimizer": FieldSpec(
        "Optimiser",
        "L-BFGS reaches a finished look in the fewest iterations, with the crispest detail; Adam takes "
        "smaller, steadier steps whose size the learning rate sets (some tutorials use it).",
        group="run",
    ),
    "init": FieldSpec(
        "Start from",
        "What the painting starts from: the photo (keeps its structure from the first step), noise "
        "(freer, more painterly, varies with the seed), the instant draft (already painted, so the "
        "optimisation refines the network's picture) or another image of your choice.",
        group="run",
    ),
    "init_image": FieldSpec(
        "Start image",
        "The image the painting starts from when 'Start from' is 'Another image'.",
        group="run",
    ),
    "noise_ratio": FieldSpec(
        "Noise mix",
        "When starting from noise: how much noise is mixed into the photo (100% is pure noise). More "
        "noise gives freer, less photographic results.",
        group="run",
        style="percent",
        minimum=0.0,
        maximum=100.0,
        step=10,
        decimals=0,
        suffix=" %",
    ),
    "seed": FieldSpec(
        "Seed",
        "Random seed. The same seed and settings repeat the same picture; a new seed gives another "
        "variation: it sets the start's noise (from the photo a little, 2 of 255 levels, so the marks "
        "settle differently while the look stays).",
        group="run",
    ),
    "device": FieldSpec(
        "Device",
        "Where the work runs: a GPU is many times faster than the CPU; the picture looks the same.",
        group="device",
    ),
    "content_layers": FieldSpec(
        "Content layers",
        "Network layers whose features must match the photo. Deeper layers keep only the layout and let "
        "textures change; shallower ones keep fine photographic detail.",
    ),
    "style_layers": FieldSpec(
        "Style layers",
        "Network layers whose texture statistics must match the style. Shallow layers carry colour and "
        "fine grain, deep layers large strokes and motifs; each weight sets that layer's say.",
    ),
    "pooling": FieldSpec(
        "Pooling",
        "How the network shrinks its feature maps: average gives smoother, flowing strokes (Gatys et al.); "
        "max gives crisper, more contrasted texture.",
    ),
    "loss_convention": FieldSpec(
        "Loss scaling",
        "How loss values are scaled. A preset's weights only mean what they meant in its source under its "
        "own scaling; 'Normalised' keeps a weight's effect the same at any picture size.",
    ),
    "style_statistic": FieldSpec(
        "Style matching",
        "What of the painting the picture must match: its feature correlations (Gatys et al.'s Gram "
        "matrices, the recipe of every preset), or their mean and spread (a Wasserstein distance), which "
        "pulls harder toward the painting: lower the style weight with it.",
    ),
    "tv_norm": FieldSpec(
        "Smoothness kind",
        "How the smoothness term measures jitter: isotropic keeps edges sharp; the squared and absolute "
        "kinds follow the TensorFlow recipes and smooth edges more.",
    ),
    "precision": FieldSpec(
        "Precision",
        "Number format of the network on a GPU: 16-bit formats are faster and lighter on memory with a "
        "nearly identical picture. Automatic uses 32-bit.",
    ),
    "learning_rate": FieldSpec(
        "Learning rate",
        "Adam only: how far each step moves the pixels. Higher paints faster but can leave blotches; "
        "lower is smoother but slower.",
        style="sci",
        minimum=1e-9,
        maximum=1e3,
    ),
    "adam_beta1": FieldSpec(
        "Adam β1",
        "Adam only: momentum. Higher keeps strokes moving the same way for longer, which can overshoot "
        "into blotches.",
        minimum=0.0,
        maximum=0.999999,
        step=0.01,
        decimals=6,
    ),
    "adam_beta2": FieldSpec(
        "Adam β2",
        "Adam only: how slowly each pixel's step size adapts. Rarely worth changing.",
        minimum=0.0,
        maximum=0.999999,
        step=0.001,
        decimals=6,
    ),
    "adam_eps": FieldSpec(
        "Adam ε",
        "Adam only: the floor of the step-size denominator. Large values (0.1) make steps more uniform "
        "across the picture, as the TensorFlow recipes do.",
        style="sci",
        minimum=1e-12,
        maximum=10.0,
    ),
    "lbfgs_history": FieldSpec(
        "L-BFGS history",
        "L-BFGS only: how many past steps shape each new one. More history gives better steps and uses "
        "more memory.",
        minimum=1,
        maximum=1000,
        step=10,
    ),
    "weights": FieldSpec(
        "Network weights",
        "The VGG-19 weights that judge style and content: the embedded original ('default'), torchvision's "
        "retrained copy ('torchvision'), or a weights file. Each gives a slightly different look.",
    ),
    "max_seconds": FieldSpec(
        "Time limit",
        "Stop after this much time and keep the picture as it is then.",
        minimum=0.0,
        maximum=1e7,
        step=30,
        decimals=0,
        suffix=" s",
        special="No limit",
    ),
}

# Fields whose editor depends on another field's value.
ENABLED_WHEN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "learning_rate": lambda v: str(v.get("optimizer")) == "adam",
    "adam_beta1": lambda v: str(v.get("optimizer")) == "adam",
    "adam_beta2": lambda v: str(v.get("optimizer")) == "adam",
    "adam_eps": lambda v: str(v.get("optimizer")) == "adam",
    "lbfgs_history": lambda v: str(v.get("optimizer")) == "lbfgs",
    "noise_ratio": lambda v: str(v.get("init")) == "noise",
    "start_size": lambda v: bool(v.get("coarse_to_fine")) and not v.get("levels"),
    "init_image": lambda v: str(v.get("init")) == "image",
}


# What the instant method uses; every other control is for the optimisation and is greyed out with it.
INSTANT_FIELDS = frozenset({"method", "strength", "size", "dpi", "style_scale", "colors", "photo_colors"})

# What each Colours choice does to the picture (the combo's item tooltips).
COLOR_TIPS: dict[str, str] = {
    ColorMode.PAINTING.value: (
        "The painting's: the picture takes the painting's colours along with its texture"
    ),
    ColorMode.PHOTO.value: (
        "The photo's: keeps the photo's colours and takes only the painting's brush marks and light "
        "and shade"
    ),
    ColorMode.MATCH.value: (
        "The painting, recoloured to the photo: the painting's colours are moved to the photo's palette "
        "before painting, so its texture comes in the photo's colours"
    ),
}


# One or two iterations at the output's own size leave its finest texture mottled (the README's 2048 px
# runs); this many give the top level room to settle, and the advice aims for it.
FULL_SIZE_WARN_AT = 2
FULL_SIZE_ENOUGH = 10


@dataclasses.dataclass(frozen=True)
class FullSizeAdvice:
    text: str = ""  # empty: nothing to say
    iterations: int | None = None  # the Iterations that give the full size FULL_SIZE_ENOUGH, if any


def full_size_plan(params: StyleParams) -> tuple[Any, ...]:
    """The coarse-to-fine levels (engine.plan.plan_levels), or none for the instant method."""
    from engine.plan import plan_levels

    return () if params.method is Method.INSTANT else plan_levels(params)


def full_size_advice(params: StyleParams) -> FullSizeAdvice:
    """A warning when the plan gives the output's own size one or two iterations, with what to change."""
    levels = full_size_plan(params)
    if len(levels) < 2 or levels[-1].iterations > FULL_SIZE_WARN_AT:
        return FullSizeAdvice()
    top = levels[-1]
    plural = "iteration" if top.iterations == 1 else "iterations"
    passes = " → ".join(f"{level.size} px × {level.iterations}" for level in levels)
    text = (
        f"Only {top.iterations} {plural} at the full {top.size} px ({passes}): its finest brush marks "
        "stay rough. "
    )
    if params.levels:
        return FullSizeAdvice(text + "Give the last pass more in Levels (Advanced).")
    needed = params.iterations
    share = 0.5 ** (len(levels) - 1) / sum(0.5**k for k in range(len(levels)))
    needed = max(needed, math.ceil(FULL_SIZE_ENOUGH / share))
    while needed <= ITERATION_LIMITS[1] and full_size_plan(params.replace(iterations=needed))[
        -1
    ].iterations < (FULL_SIZE_ENOUGH):
        needed += 1
    if needed > ITERATION_LIMITS[1]:
        return FullSizeAdvice(text + "Raise Start size, or set Levels in Advanced.")
    return FullSizeAdvice(
        text
        + f"Raise Iterations to {needed} for {FULL_SIZE_ENOUGH} at full size, or set Levels in Advanced.",
        needed,
    )


def is_instant(values: dict[str, Any]) -> bool:
    return str(values.get("method")) == Method.INSTANT.value


class CollapsibleSection(QWidget):
    """A header button that shows or hides its content (the advanced settings)."""

    toggled = Signal(bool)

    def __init__(self, title: str, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.button = QToolButton()
        self.button.setObjectName("SectionToggle")
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.RightArrow)
        self.button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.button.setToolTip(
            "Network layers and their weights, pooling, loss scaling, precision and optimiser details"
        )
        self.button.toggled.connect(self.set_open)
        self.content = content
        content.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.button)
        layout.addWidget(content)

    @property
    def is_open(self) -> bool:
        return self.button.isChecked()

    def set_open(self, is_open: bool) -> None:
        if self.button.isChecked() != is_open:
            self.button.setChecked(is_open)
            return
        self.button.setArrowType(Qt.ArrowType.DownArrow if is_open else Qt.ArrowType.RightArrow)
        self.content.setVisible(is_open)
        self.toggled.emit(is_open)


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(StyleParams)


def _field_type(name: str) -> Any:
    return _field_types()[name]


class ParamPanel(QScrollArea):
    """Every StyleParams field as a control; ``params()`` is the panel's value."""

    paramsChanged = Signal(object)  # StyleParams, or None while the controls are invalid  # noqa: N815

    def __init__(
        self,
        parent: QWidget | None = None,
        choose_file: Callable[[str], Path | None] | None = None,
        memory_planner: MemoryPlanner | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ParamPanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.choose_file = choose_file or (lambda title: None)
        self.fields: dict[str, Field] = {}
        self._params = StyleParams()
        self._error = ""
        self._content_size: tuple[int, int] | None = None
        self._selecting = False
        # Print size: set while the print length box is being edited, so it is not rewritten under
        # the user's fingers; and while the panel writes it.
        self._print_typing = False
        # Coarse-to-fine plan and memory estimate: worked out after a short pause (they import the
        # engine, and the memory estimate reads the free memory), and only once the engine is loaded
        # when the window says it is loading it in the background (defer_estimates).
        self.memory_planner: MemoryPlanner = memory_planner or default_memory_planner
        self._estimates_deferred = False
        self._memory_plan: tuple[StyleParams, Any] | None = None
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(MEMORY_DELAY_MS)
        self._estimate_timer.timeout.connect(self.refresh_estimates)

        body = QWidget()
        body.setObjectName("ParamBody")
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 6, 0)
        column.setSpacing(10)

        # Preset row.
        self.preset_combo = QComboBox()
        self.preset_combo.setIconSize(PRESET_ICON_SIZE)
        self._fill_preset_combo()
        self.preset_combo.setToolTip(
            "A named recipe: sets the weights, layers, optimiser and iterations its source used, so the "
            "picture takes on that recipe's look. Output size, device, seed and weights are kept."
        )
        self.preset_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.preset_combo.setMinimumContentsLength(12)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_chosen)
        self.preset_state = QLabel("")
        self.preset_state.setObjectName("Caption")
        self.preset_state.setToolTip("Shows when the controls differ from the preset's recipe")
        self.preset_description = QLabel("")
        self.preset_description.setObjectName("Caption")
        self.preset_description.setWordWrap(True)
        self.preset_description.setToolTip("What this preset reproduces and where its numbers come from")
        preset_box = QGroupBox("Preset")
        preset_layout = QVBoxLayout(preset_box)
        preset_layout.setSpacing(4)
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset_combo, 1)
        preset_row.addWidget(self.preset_state)
        preset_layout.addLayout(preset_row)
        preset_layout.addWidget(self.preset_description)
        column.addWidget(preset_box)

        forms: dict[str, QFormLayout] = {}
        self.groups: dict[str, QGroupBox] = {}
        advanced_body = QWidget()
        advanced_body.setObjectName("AdvancedBody")
        for key, title in GROUPS:
            if key == "advanced":
                form = QFormLayout(advanced_body)
                form.setContentsMargins(4, 0, 0, 0)
            elif not title:
                top = QWidget()
                top.setObjectName(f"Group_{key}")
                form = QFormLayout(top)
                form.setContentsMargins(4, 0, 4, 0)
                column.addWidget(top)
            else:
                box = QGroupBox(title)
                box.setObjectName(f"Group_{key}")
                self.groups[key] = box
                form = QFormLayout(box)
                column.addWidget(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.setHorizontalSpacing(10)
            form.setVerticalSpacing(6)
            forms[key] = form

        self.labels: dict[str, QLabel] = {}
        for f in dataclasses.fields(StyleParams):
            if f.name == "preset":
                continue  # the preset combo above is its editor
            field = self._make_field(f.name)
            self.fields[f.name] = field
            label = QLabel(field.spec.label)
            label.setToolTip(field.spec.tooltip)
            self.labels[f.name] = label
            form = forms.get(field.spec.group, forms["advanced"])
            if isinstance(field, LayersField):
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            form.addRow(label, field.widget)
            field.changed.connect(self._on_field_changed)
            if f.name == "size":
                # The print size (cm/in at a DPI) sits in the same group.
                self.size_hint = QLabel("")
                self.size_hint.setObjectName("Caption")
                self.size_hint.setToolTip(
                    "The painting's size in pixels, from the long edge and the photo's shape"
                )
                form.addRow("", self.size_hint)
                self.print_row = self._make_print_row()
                self.print_label = QLabel("Print size")
                self.print_label.setToolTip(self.print_length.toolTip())
                form.addRow(self.print_label, self.print_row)
                form.addRow("", self._make_full_size_warning())
            elif f.name == "start_size":
                self.levels_plan = QLabel("")
                self.levels_plan.setObjectName("Caption")
                self.levels_plan.setWordWrap(True)
                self.levels_plan.setToolTip(
                    "The passes this run will make, smallest first: the long edge of each pass and its "
                    "iterations. Set by size, iterations, coarse to fine and start size, or by the explicit "
                    "Levels in Advanced."
                )
                passes = QLabel("Passes")
                passes.setToolTip(self.levels_plan.toolTip())
                form.addRow(passes, self.levels_plan)

        self._make_memory_row(forms["output"])

        self.advanced = CollapsibleSection("Advanced", advanced_body)
        column.addWidget(self.advanced)

        self.error_label = QLabel("")
        self.error_label.setObjectName("ErrorText")
        self.error_label.setWordWrap(True)
        self.error_label.setToolTip("Why these settings cannot run; fix it to enable Run")
        self.error_label.hide()
        column.addWidget(self.error_label)
        column.addStretch(1)
        self.setWidget(body)
        # Scrolling past a control never changes it: the wheel needs the control's focus.
        self._wheel_guard = guard_wheel(body)
        self.set_params(StyleParams())

    # -- construction ---------------------------------------------------------
    def _make_print_row(self) -> QWidget:
        tip = (
            "The painting's long edge on paper. Typing a length sets the long edge in pixels to "
            "length × print resolution (30 cm at 300 dpi is 3543 px), so a larger print or a higher "
            "resolution paints more pixels: finer brush marks relative to the frame, and a longer run. "
            f"Without a print resolution, {DEFAULT_DPI:g} dpi is used. Changing the pixels or the "
            "resolution changes the length shown here."
        )
        self.print_length = QDoubleSpinBox()
        self.print_length.setObjectName("PrintLength")
        self.print_length.setRange(0.0, 10000.0)
        self.print_length.setDecimals(2)
        self.print_length.setSingleStep(1.0)
        self.print_length.setSpecialValueText("Not set")
        self.print_length.setKeyboardTracking(False)
        self.print_length.setMinimumWidth(96)
        self.print_length.setToolTip(tip)
        self.print_length.valueChanged.connect(self._on_print_length_changed)
        self.print_unit = QComboBox()
        self.print_unit.setObjectName("PrintUnit")
        self.print_unit.addItem("cm", "cm")
        self.print_unit.addItem("in", "in")
        self.print_unit.setToolTip(
            "Unit of the print length: centimetres or inches. Changing it converts the length shown; "
            "the picture stays the same."
        )
        self.print_unit.currentIndexChanged.connect(lambda _index: self._sync_print_length())
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.print_length, 1)
        row.addWidget(self.print_unit)
        widget = QWidget()
        widget.setLayout(row)
        widget.setToolTip(tip)
        return widget

    def _make_full_size_warning(self) -> QWidget:
        """A warning under the print size when the plan leaves the output's own size almost no work."""
        self.full_size_warning = QLabel("")
        self.full_size_warning.setObjectName("WarningText")
        self.full_size_warning.setWordWrap(True)
        self.full_size_warning.setToolTip(
            "Coarse to fine gives each larger pass half the iterations of the one before, so a large "
            "print gets few at its own size, where the finest brush marks are painted."
        )
        self.full_size_apply = QPushButton("")
        self.full_size_apply.setObjectName("FullSizeApply")
        self.full_size_apply.setToolTip("Raise Iterations so the full size gets its share of the work")
        self.full_size_apply.clicked.connect(self.apply_full_size_advice)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.full_size_warning)
        column.addWidget(self.full_size_apply, 0, Qt.AlignmentFlag.AlignLeft)
        self.full_size_box = QWidget()
        self.full_size_box.setLayout(column)
        self.full_size_box.hide()
        self._full_size_iterations: int | None = None
        return self.full_size_box

    def _make_memory_row(self, form: QFormLayout) -> None:
        tip = (
            "How much memory the run will need at its largest pass, against what the device has free "
            "now. A run that does not fit would fail or fall back to a smaller plan."
        )
        self.memory_label = QLabel("")
        self.memory_label.setObjectName("Caption")
        self.memory_label.setWordWrap(True)
        self.memory_label.setToolTip(tip)
        self.memory_apply = QPushButton("Apply")
        self.memory_apply.setObjectName("MemoryApply")
        self.memory_apply.setToolTip(
            "Change the settings as suggested so the run fits in memory (the picture may change: "
            "smaller, tiled, or painted with another optimiser)"
        )
        self.memory_apply.clicked.connect(self.apply_memory_suggestion)
        self.memory_apply.hide()
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.memory_label)
        column.addWidget(self.memory_apply, 0, Qt.AlignmentFlag.AlignLeft)
        widget = QWidget()
        widget.setLayout(column)
        widget.setToolTip(tip)
        label = QLabel("Memory")
        label.setToolTip(tip)
        form.addRow(label, widget)

    def _make_field(self, name: str) -> Field:
        spec = FIELD_SPECS.get(name) or FieldSpec(
            name.replace("_", " ").capitalize(),
            f"The engine's '{name}' setting (see the engine documentation for its effect on the picture).",
        )
        kind = _field_type(name)
        origin = typing.get_origin(kind)
        if name == "seed":
            return SeedField(name, spec)
        if name == "strength":
            return SliderField(name, spec)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            field = EnumField(name, spec, kind)
            if name == "colors":
                # The longest choice would widen the Look group until its rows wrap.
                field.combo.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
                )
                field.combo.setMinimumContentsLength(14)
                for index in range(field.combo.count()):
                    tip = COLOR_TIPS.get(field.combo.itemData(index), "")
                    field.combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
            return field
        if name.endswith("_layers"):
            return LayersField(name, spec)
        if origin is tuple:
            inner = typing.get_args(kind)
            if inner and typing.get_args(inner[0]) == (int, int):
                return PairsField(name, spec)
            return JsonField(name, spec)
        if kind is bool:
            return BoolField(name, spec)
        if kind is int:
            return NumberField(name, spec, integer=True)
        if kind is float:
            return NumberField(name, spec, integer=False)
        if name == "weights":
            return PathField(name, spec, self._choose, keywords=("default", "torchvision"), optional=False)
        if kind == str | None or kind is str:
            return PathField(name, spec, self._choose)
        return JsonField(name, spec)

    def _choose(self, title: str) -> Path | None:
        return self.choose_file(title)

    # -- value ----------------------------------------------------------------
    def raw_values(self) -> dict[str, Any]:
        values = {name: field.get() for name, field in self.fields.items()}
        values["preset"] = self._params.preset
        return values

    def params(self) -> StyleParams | None:
        """The controls as a StyleParams, or None when they do not make a valid one."""
        return None if self._error else self._params

    @property
    def last_valid(self) -> StyleParams:
        return self._params

    @property
    def error(self) -> str:
        return self._error

    def set_params(self, params: StyleParams) -> None:
        for name, field in self.fields.items():
            field.set(getattr(params, name))
        self._select_preset(params.preset)
        self._params = params
        self._set_error("")
        self._update_dependents()
        self._sync_print_length()
        self.schedule_estimates()
        self.paramsChanged.emit(params)

    def set_content_size(self, size: tuple[int, int] | None) -> None:
        self._content_size = size
        self._update_size_hint()
        self.schedule_estimates()

    def output_size(self, params: StyleParams | None = None) -> tuple[int, int] | None:
        """(width, height) the painting will have, as the engine computes it."""
        if self._content_size is None:
            return None
        params = params or self._params
        width, height = self._content_size
        scale = params.size / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))

    def set_available_devices(self, available: list[str]) -> None:
        field = self.fields.get("device")
        if isinstance(field, EnumField):
            field.mark_unavailable(available, "Not available on this computer")
        # The devices are known, so the engine is loaded: estimates no longer stall the window.
        if self._estimates_deferred:
            self._estimates_deferred = False
            self.schedule_estimates()

    # -- print size -----------------------------------------------------------
    def print_inches(self) -> float:
        """The print length typed, in inches (0 when not set)."""
        length = self.print_length.value()
        return length / CM_PER_INCH if self.print_unit.currentData() == "cm" else length

    def _on_print_length_changed(self, _value: float) -> None:
        inches = self.print_inches()
        if inches <= 0:
            return  # "Not set": the pixels stay as they are
        dpi = self.fields["dpi"].get()
        if not dpi:
            dpi = DEFAULT_DPI
            self.fields["dpi"].set(dpi)
        # Out of range sizes go to StyleParams as they are, so its message says what is wrong.
        self.fields["size"].set(round(inches * float(dpi)))
        self._print_typing = True
        try:
            self._on_field_changed()
        finally:
            self._print_typing = False

    def _sync_print_length(self) -> None:
        """Show the long edge in pixels as a length on paper at the print resolution."""
        if self._print_typing:
            return
        try:
            size, dpi = float(self.fields["size"].get()), float(self.fields["dpi"].get())
        except (TypeError, ValueError):
            return
        inches = size / dpi if dpi > 0 else 0.0
        length = inches * CM_PER_INCH if self.print_unit.currentData() == "cm" else inches
        self.print_length.blockSignals(True)
        self.print_length.setValue(length)
        self.print_length.blockSignals(False)

    # -- coarse-to-fine plan and memory estimate ------------------------------
    def defer_estimates(self) -> None:
        """Wait for set_available_devices (the engine loading elsewhere) before estimating."""
        self._estimates_deferred = True
        self._estimate_timer.stop()
        self.levels_plan.setText("Worked out once the engine has loaded…")
        self.memory_label.setText("Memory: estimated once the devices are known…")
        self.memory_apply.hide()

    def schedule_estimates(self) -> None:
        if not self._estimates_deferred:
            self._estimate_timer.start()

    @property
    def memory_plan(self) -> Any:
        """The last memory plan (engine.memory.MemoryPlan) for the current settings, or None."""
        return self._memory_plan[1] if self._memory_plan else None

    def refresh_estimates(self) -> None:
        """Work out the coarse-to-fine passes and the memory estimate for the controls now."""
        self._estimate_timer.stop()
        params = self.params()
        self._memory_plan = None
        self.memory_apply.hide()
        if params is None:
            self.levels_plan.setText("— (fix the settings first)")
            self.memory_label.setText("Memory: — (fix the settings first)")
            return
        if params.method is Method.INSTANT:
            self.levels_plan.setText("One pass of the instant network, no optimisation")
            self.memory_label.setText(
                "Memory: little (the instant network; pictures above 4 MP are painted in tiles)"
            )
            return
        try:
            self.levels_plan.setText(describe_levels(params))
            levels_field = self.fields["levels"]
            if isinstance(levels_field, PairsField):
                automatic = levels_text(params.replace(levels=()))
                levels_field.edit.setPlaceholderText(f"Automatic: {automatic}")
        except Exception as error:  # noqa: BLE001 - a label must not take the panel down
            log.exception("planning the levels failed")
            self.levels_plan.setText(f"Could not plan the passes: {error}")
        content = self._content_size or ASSUMED_CONTENT_SIZE
        try:
            plan = self.memory_planner(params, content)
        except Exception as error:  # noqa: BLE001 - e.g. a device that is not available
            log.info("memory estimate failed: %s", error)
            self.memory_label.setText(f"Memory: not estimated ({error})")
            return
        self._memory_plan = (params, plan)
        gib = float(1 << 30)
        text = f"Memory: about {plan.estimate / gib:.1f} GiB of {plan.available / gib:.1f} GiB available — "
        if plan.fits:
            text += "fits"
        else:
            text += f"does not fit: {plan.suggestion}" if plan.suggestion else "does not fit"
        if self._content_size is None:
            text += " (for a 4:3 photo)"
        self.memory_label.setText(text)
        self.memory_apply.setVisible(not plan.fits and plan.suggested is not None)

    def apply_memory_suggestion(self) -> None:
        """Set the controls to the memory plan's suggested settings."""
        self.refresh_estimates()  # the plan for exactly what the controls hold now
        plan = self.memory_plan
        if plan is not None and not plan.fits and plan.suggested is not None:
            self.set_params(plan.suggested)

    # -- reactions ------------------------------------------------------------
    def _on_field_changed(self) -> None:
        self._update_dependents()
        try:
            params = StyleParams(**self.raw_values())
        except InputError as error:
            self._set_error(str(error))
            self.schedule_estimates()
            self.paramsChanged.emit(None)
            return
        except (TypeError, ValueError) as error:
            self._set_error(str(error))
            self.schedule_estimates()
            self.paramsChanged.emit(None)
            return
        self._params = params
        self._set_error("")
        self._update_preset_state()
        self._update_size_hint()
        self._sync_print_length()
        self.schedule_estimates()
        self.paramsChanged.emit(params)

    def _fill_preset_combo(self) -> None:
        """Presets under non-selectable group headers, each with its example thumbnail as icon."""
        combo = self.preset_combo
        model = combo.model()
        assert isinstance(model, QStandardItemModel)
        for group, presets in presets_by_group():
            if not presets:
                continue
            combo.addItem(group)  # no data: choosing it is impossible and would be ignored
            header = model.item(combo.count() - 1)
            header.setFlags(header.flags() & ~(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled))
            font = QFont(header.font())
            font.setBold(True)
            header.setFont(font)
            header.setToolTip(group)
            for preset in presets:
                thumbnail = PRESET_THUMBNAILS / f"{preset.name}.png"
                icon = QIcon(str(thumbnail)) if thumbnail.is_file() else QIcon()
                combo.addItem(icon, preset.display_name, preset.name)
                also = f"{preset.title}. " if preset.look else ""
                combo.setItemData(
                    combo.count() - 1,
                    f"{also}{preset.description}\n\nSource: {preset.source}",
                    Qt.ItemDataRole.ToolTipRole,
                )

    def _on_preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if self._selecting or not name or name not in PRESETS:
            return
        self.set_params(apply_preset(self._params, name))

    def _select_preset(self, name: str) -> None:
        index = self.preset_combo.findData(name)
        if index < 0:
            # A recipe from elsewhere may name a preset this version lacks; show it rather than lie.
            self.preset_combo.addItem(f"{name} (from a recipe)", name)
            index = self.preset_combo.count() - 1
        self._selecting = True
        try:
            self.preset_combo.setCurrentIndex(index)
        finally:
            self._selecting = False
        preset = PRESETS.get(name)
        self.preset_description.setText(preset.description if preset else "Not a preset of this version.")

    def _update_preset_state(self) -> None:
        preset = PRESETS.get(self._params.preset)
        modified = preset is not None and apply_preset(self._params, preset.name) != self._params
        self.preset_state.setText("modified" if modified else "")

    def _update_dependents(self) -> None:
        values = {name: field.get() for name, field in self.fields.items()}
        instant = is_instant(values)
        for name, field in self.fields.items():
            rule = ENABLED_WHEN.get(name)
            enabled = (name in INSTANT_FIELDS or not instant) and (rule is None or rule(values))
            field.set_enabled(enabled)
            label = self.labels.get(name)
            if label is not None:
                label.setEnabled(enabled)

    def _update_size_hint(self) -> None:
        size = self.output_size()
        self.size_hint.setText(
            "" if size is None else f"{size[0]} × {size[1]} px ({size[0] * size[1] / 1e6:.2f} MP)"
        )
        self._update_plan_notes()

    def _update_plan_notes(self) -> None:
        """What the coarse-to-fine plan really does: the start size it uses, and too little at full size."""
        params = self._params
        levels = full_size_plan(params)
        box = self.fields["start_size"].box  # type: ignore[attr-defined]
        used = levels[0].size if levels else params.start_size
        automatic = params.coarse_to_fine and not params.levels and params.method is not Method.INSTANT
        # The box holds the setting (kept in the recipe); when the output is smaller, the plan starts there.
        box.setSuffix(" px" if not automatic or used == params.start_size else f" px · {used} px used")
        advice = full_size_advice(params)
        self._full_size_iterations = advice.iterations
        self.full_size_box.setVisible(bool(advice.text))
        self.full_size_warning.setText(advice.text)
        self.full_size_apply.setVisible(advice.iterations is not None)
        if advice.iterations is not None:
            self.full_size_apply.setText(f"Use {advice.iterations} iterations")

    def apply_full_size_advice(self) -> None:
        if self._full_size_iterations is not None:
            self.set_params(self._params.replace(iterations=self._full_size_iterations))

    def _set_error(self, text: str) -> None:
        self._error = text
        if text:
            self.error_label.setText(text[0].upper() + text[1:])
        self.error_label.setVisible(bool(text))
        if not text:
            self._update_preset_state()
            self._update_size_hint()
