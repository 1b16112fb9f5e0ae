"""Undo and redo for what the artist edits: the photo, the styles (added, removed, reordered, blended)
and every parameter (a control, a preset, a memory suggestion, a restored recipe).

One mechanism covers every control: the history watches the run model the widgets bind to
(``RunModel.params`` and ``RunModel.inputs``), and each change becomes a ``QUndoCommand`` holding
the value before and after. Undoing puts the old value back through the widgets, which tell the
model, which the history then recognises as its own doing. Consecutive changes of one setting
(a slider drag, typing digits, a blend slider) merge into one step while they keep coming within
``MERGE_SECONDS`` of each other, so undo is never one step per pixel of drag.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QMainWindow, QMenu

from engine.params import StyleParams
from engine.presets import PRESETS
from ui.model import Inputs, RunModel

# A drag emits a change every few milliseconds and typing one every few hundred; a pause longer
# than this starts a new step (what Qt's own text editors do for typing, as one step per word).
MERGE_SECONDS = 1.5

PARAMS_ID = 1
BLEND_ID = 2


def _field_label(name: str) -> str:
    from ui.param_panel import FIELD_SPECS

    spec = FIELD_SPECS.get(name)
    return spec.label if spec is not None else name.replace("_", " ").capitalize()


def changed_fields(old: StyleParams, new: StyleParams) -> list[str]:
    return [f.name for f in dataclasses.fields(StyleParams) if getattr(old, f.name) != getattr(new, f.name)]


def describe_params_change(old: StyleParams, new: StyleParams) -> str:
    """The step's name in the Edit menu: "Undo Strength", "Undo preset Gatys 2016", ..."""
    names = changed_fields(old, new)
    if "preset" in names:
        preset = PRESETS.get(new.preset)
        return f"preset {preset.display_name if preset else new.preset}"
    if len(names) == 1:
        return _field_label(names[0])
    return f"{len(names)} settings"


def _paths(inputs: Inputs) -> tuple[Any, list[Any]]:
    content = inputs.content.path if inputs.content is not None else None
    return content, [image.path for image, _ in inputs.styles]


def describe_inputs_change(old: Inputs, new: Inputs) -> str:
    (old_content, old_styles), (new_content, new_styles) = _paths(old), _paths(new)
    if old_content != new_content:
        return "photo" if new_content is not None else "remove photo"
    if len(new_styles) > len(old_styles):
        return "add style" if len(new_styles) - len(old_styles) == 1 else "add styles"
    if len(new_styles) < len(old_styles):
        return "remove style" if len(old_styles) - len(new_styles) == 1 else "remove styles"
    if old_styles != new_styles:
        return "reorder styles" if sorted(map(str, old_styles)) == sorted(map(str, new_styles)) else "styles"
    return "style blend"


class _Change(QUndoCommand):
    """One change from ``old`` to ``new``; it was already made when pushed, so the first redo is a no-op."""

    def __init__(self, history: EditHistory, old: Any, new: Any, text: str, merge_key: object) -> None:
        super().__init__(text)
        self.history = history
        self.old = old
        self.new = new
        self.merge_key = merge_key  # None: never merges
        self.last = time.monotonic()
        self._done = True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.apply(self.new)

    def undo(self) -> None:
        self.apply(self.old)

    def apply(self, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, type(self)) or self.merge_key is None or other.merge_key != self.merge_key:
            return False
        if other.last - self.last > MERGE_SECONDS:
            return False
        self.new = other.new
        self.last = other.last
        # Dragged back to where it started: the step changes nothing and goes.
        self.setObsolete(self.old == self.new)
        return True


class ParamsChange(_Change):
    def id(self) -> int:
        return PARAMS_ID

    def apply(self, value: Any) -> None:
        self.history.apply_params_value(value)


class InputsChange(_Change):
    def id(self) -> int:
        return BLEND_ID

    def apply(self, value: Any) -> None:
        self.history.apply_inputs_value(value)


class EditHistory(QObject):
    """The undo stack of the inputs and parameters, fed by the run model's changes."""

    def __init__(
        self,
        model: RunModel,
        apply_params: Callable[[StyleParams], None],
        apply_inputs: Callable[[Inputs], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.stack = QUndoStack(self)
        self.model = model
        self._apply_params = apply_params
        self._apply_inputs = apply_inputs
        self._params = model.params
        self._inputs = model.inputs
        self._applying = 0
        self.undo_action: QAction | None = None  # set by install_edit_menu
        self.redo_action: QAction | None = None
        model.params_changed.connect(self._on_params)
        model.inputs_changed.connect(self._on_inputs)

    # -- what the model says ---------------------------------------------------------------
    def _on_params(self, params: StyleParams | None) -> None:
        if params is None:
            return  # half-typed: the step is made once the controls are valid again
        old, self._params = self._params, params
        if self._applying or old is None or old == params:
            return
        names = changed_fields(old, params)
        # Only a change of one setting merges with the one before (a preset or a restored recipe
        # changes many at once and is always a step of its own).
        key = names[0] if len(names) == 1 else None
        self.stack.push(ParamsChange(self, old, params, describe_params_change(old, params), key))

    def _on_inputs(self, inputs: Inputs) -> None:
        old, self._inputs = self._inputs, inputs
        if self._applying or old == inputs:
            return
        if _paths(old) == _paths(inputs) and [b for _, b in old.styles] == [b for _, b in inputs.styles]:
            return  # the same files, re-checked on disk: nothing the artist changed
        text = describe_inputs_change(old, inputs)
        # Blend sliders merge while the same styles are dragged; adding, removing, reordering and a
        # new photo are steps of their own.
        key = ("blend", tuple(map(str, _paths(inputs)[1]))) if text == "style blend" else None
        self.stack.push(InputsChange(self, old, inputs, text, key))

    # -- putting a value back ----------------------------------------------------------------
    @contextmanager
    def _quietly(self) -> Iterator[None]:
        self._applying += 1
        try:
            yield
        finally:
            self._applying -= 1

    def apply_params_value(self, params: StyleParams) -> None:
        with self._quietly():
            self._apply_params(params)
        self._params = params

    def apply_inputs_value(self, inputs: Inputs) -> None:
        with self._quietly():
            self._apply_inputs(inputs)
        self._inputs = inputs

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Everything changed inside is one step (restoring a recipe: its parameters and inputs)."""
        self.stack.beginMacro(text)
        try:
            yield
        finally:
            self.stack.endMacro()

    def forget(self) -> None:
        """Start the history afresh from what the model holds now (a restored or opened session)."""
        self.stack.clear()
        self._params = self.model.params
        self._inputs = self.model.inputs

    # -- the Edit menu ------------------------------------------------------------------------
    def actions(self, parent: QObject) -> tuple[QAction, QAction]:
        undo = self.stack.createUndoAction(parent, "Undo")
        undo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        undo.setToolTip("Undo the last change to the photo, the styles or the settings (Ctrl+Z)")
        undo.setStatusTip("Undo the last change to the photo, the styles or the settings")
        redo = self.stack.createRedoAction(parent, "Redo")
        # Ctrl+Shift+Z everywhere (the platform's own Redo too, e.g. Ctrl+Y on Windows).
        keys = [QKeySequence("Ctrl+Shift+Z")]
        keys += [k for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) if k not in keys]
        redo.setShortcuts(keys)
        redo.setToolTip("Redo the change just undone (Ctrl+Shift+Z)")
        redo.setStatusTip("Redo the change just undone")
        return undo, redo


def install_edit_menu(window: QMainWindow, history: EditHistory) -> QMenu:
    """An Edit menu after File with Undo and Redo; the actions work wherever focus is in the window.

    A text field keeps its own Ctrl+Z while it has focus (Qt gives the focused editor the shortcut
    first), so typing is undone there as everywhere else.
    """
    undo, redo = history.actions(window)
    window.addAction(undo)
    window.addAction(redo)
    menu = QMenu("&Edit", window)
    menu.setObjectName("EditMenu")
    menu.addAction(undo)
    menu.addAction(redo)
    bar = window.menuBar()
    menus = [action for action in bar.actions() if action.menu() is not None]
    if len(menus) > 1:
        bar.insertMenu(menus[1], menu)
    else:
        bar.addMenu(menu)
    history.undo_action, history.redo_action = undo, redo
    return menu
