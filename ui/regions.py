"""Regions in the window: the mask editor wired to the photo, the styles, the job and its restoring.

``RegionsController`` owns the painted masks (``ui.masks.RegionMasks``) and the editor
(``ui.mask_editor.MaskEditor``), which takes the middle of the window while the photo pane's
Regions button is down. A job carries its regions as mask files (``job_masks``): PNGs named by
their content in the cache folder, so a history entry, the autosave, an export's recipe and a
reopened recipe all name exactly the masks the run used; ``restore`` paints them back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QBoxLayout, QStackedWidget, QWidget

from engine.errors import InputError
from engine.params import StyleJob
from engine.regions import check_style_mask, load_mask, resized_weight
from ui.imports import ImportedImage, check_input_file, error_text, shown
from ui.mask_editor import MaskEditor, Region
from ui.masks import RegionMasks
from ui.message_bar import Level
from ui.style_list import StyleRow

if TYPE_CHECKING:
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)

# Regions of this many removed styles are kept, so an undone removal brings its region back.
GONE_KEPT = 8


def find_mask(path: Path, recorded: Any, folder: Path | None = None) -> Path | None:
    """A job's mask as the job names it, else where the recipe recorded it (as inputs are found),
    else by its name in ``folder``: masks painted here are kept in the cache under names made of
    their content, so a recipe that records file names only still finds them."""
    candidates = [path]
    if isinstance(recorded, Mapping) and isinstance(recorded.get("path"), str):
        candidates.append(Path(recorded["path"]))
    if folder is not None and path.name.startswith("mask-"):
        candidates.append(folder / path.name)
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError):  # a recipe is untrusted text: a name too long, a NUL
            continue
    return None


class RegionsController(QObject):
    """The regions of the job being edited: painted in the editor, written for a run, restored."""

    # A change of the regions is complete (a stroke, a fill, an undo, a restore).
    edited = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.masks = RegionMasks(self)
        self.editor = MaskEditor(self.masks, window.prompter, window.result.view.result_image)
        self.folder = window.locations.cache_dir / "masks"
        self.stack = _stacked_over(window.result, self.editor)
        window.recipes.restore_regions = self.restore
        window.model.finished.connect(lambda _: self._on_picture())
        window.model.viewing_changed.connect(lambda _: self._on_picture())
        self.button = window.content_pane.regions_button
        self.button.toggled.connect(self.set_open)
        self.editor.closeRequested.connect(lambda: self.button.setChecked(False))
        self.editor.problem.connect(lambda text: window.show_message(text, Level.ERROR))
        window.content_pane.imageChanged.connect(self._on_photo)
        window.style_list.changed.connect(self._on_styles)
        self.masks.edited.connect(self._on_edited)
        self._seen: list[tuple[int, Path, str]] = []  # (region id, painting, colour) of the rows
        self._gone: list[tuple[int, Path, str]] = []  # the same of rows removed lately, latest first
        # Which part of each painting its style comes from (a mask file of the painting), by region.
        self.style_masks: dict[int, Path] = {}
        self.editor.styleMaskRequested.connect(self.choose_style_mask)
        self.editor.styleMaskCleared.connect(self.clear_style_mask)
        self._on_photo(window.content_pane.image)
        self._on_styles()

    # ------------------------------------------------------------------ view
    @property
    def is_open(self) -> bool:
        return self.stack.currentWidget() is self.editor

    def set_open(self, open_: bool) -> None:
        stack = self.stack
        if open_:
            self.editor.refresh_result()
            stack.setCurrentWidget(self.editor)
            self.editor.canvas.setFocus()
        else:
            stack.setCurrentWidget(self.window.result)
        if self.button.isChecked() != open_:
            self.button.setChecked(open_)

    def _on_picture(self) -> None:
        if self.is_open:
            self.editor.refresh_result()

    def _on_photo(self, image: ImportedImage | None) -> None:
        self.editor.set_photo(image.preview if image is not None else None)
        self._show_on_photo()

    def _on_styles(self) -> None:
        rows = self.window.style_list.rows
        self._carry_over(rows)
        self.editor.set_regions([Region(row.region_id, row.image.name, row.colour) for row in rows])
        self._show_on_photo()

    def _carry_over(self, rows: list[StyleRow]) -> None:
        """A row made anew for a painting that was just in the list (a restored job, an undone
        removal or change of the styles) takes back the region and colour of the row it replaces,
        matched by file, latest first. Regions of styles gone for longer are let go."""
        current = {row.region_id for row in rows}
        self._gone = [seen for seen in self._seen if seen[0] not in current] + self._gone
        known = {seen[0] for seen in self._seen}
        for row in rows:
            if row.region_id in known:
                continue
            match = next((seen for seen in self._gone if seen[1] == row.image.path), None)
            if match is not None:
                self._gone.remove(match)
                self.masks.rekey(match[0], row.region_id)
                if match[0] in self.style_masks:
                    self.style_masks[row.region_id] = self.style_masks.pop(match[0])
                row.set_colour(match[2])
        self._seen = [(row.region_id, row.image.path, row.colour.name()) for row in rows]
        del self._gone[GONE_KEPT:]
        kept = {*current, *(seen[0] for seen in self._gone)}
        self.masks.forget(kept)
        self.style_masks = {key: path for key, path in self.style_masks.items() if key in kept}
        self.editor.set_style_masks({key: path.name for key, path in self.style_masks.items()})

    def _on_edited(self) -> None:
        self._show_on_photo()
        self.edited.emit()

    def _show_on_photo(self) -> None:
        rows = self.window.style_list.rows
        painted = [row for row in rows if self.masks.painted(row.region_id)]
        self.window.content_pane.show_regions(self.editor.canvas.overlay_image() if painted else None)
        caption = self.window.content_pane.regions_caption
        if not rows:
            caption.setText("")
        elif not painted:
            caption.setText("none: every style everywhere")
        else:
            caption.setText(f"{len(painted)} of {len(rows)} style{'s' * (len(rows) != 1)} placed")

    # ------------------------------------------------------------------ jobs
    def keys(self) -> list[int]:
        return [row.region_id for row in self.window.style_list.rows]

    @property
    def painted(self) -> bool:
        return self.masks.any_painted(self.keys())

    def job_masks(self) -> tuple[Path, ...]:
        """The masks for a job of the styles as listed: one file per style, or none when nothing is
        painted (every style everywhere, blended)."""
        keys = self.keys()
        if not self.masks.any_painted(keys):
            return ()
        return self.masks.write_for_job(keys, self.folder)

    def job_style_masks(self) -> tuple[Path | None, ...]:
        """Each style's painting mask for a job (None: the whole painting), or none at all."""
        keys = self.keys()
        if not any(key in self.style_masks for key in keys):
            return ()
        return tuple(self.style_masks.get(key) for key in keys)

    def choose_style_mask(self, key: int) -> None:
        """Ask for a mask of the painting whose region is ``key`` (white: the part its style comes from)."""
        title = "Take the style from part of the painting"
        paths = self.window.prompter.open_images(title, self.editor.last_folder)
        if not paths:
            return
        path = paths[0]
        self.editor.last_folder = path.parent
        try:
            check_input_file(path)
            check_style_mask(load_mask(path))
        except (InputError, OSError) as error:
            problem = error_text(error, path.name)
            self.window.show_message(f"The painting's mask was not used: {problem}", Level.ERROR)
            return
        self.style_masks[key] = path
        self.editor.set_style_masks({k: p.name for k, p in self.style_masks.items()})
        self.edited.emit()

    def clear_style_mask(self, key: int) -> None:
        if self.style_masks.pop(key, None) is not None:
            self.editor.set_style_masks({k: p.name for k, p in self.style_masks.items()})
            self.edited.emit()

    def draft_masks(self) -> tuple[Path, ...]:
        """``job_masks`` for the instant draft: a mask that cannot be written leaves the draft without
        regions (said in the log) rather than without a picture."""
        try:
            return self.job_masks()
        except (InputError, OSError) as error:
            log.warning("the draft is made without regions: %s", error)
            return ()

    def restore(self, job: StyleJob, recipe: Mapping[str, Any] | None) -> list[str]:
        """Paint a job's masks back onto the styles as listed (after the restorer set them); returns
        a line per mask that could not be found or read. A job without masks clears the regions."""
        keys = self.keys()
        problems = self._restore_style_masks(job, recipe, keys)
        if not job.masks:
            if self.masks.any_painted(keys):
                self.masks.set_layers({})
            return problems
        if len(job.masks) != len(keys):
            count = f"{len(job.masks)} masks for {len(keys)} styles"
            return [*problems, f"{count}: the regions were not restored"]
        recorded = _recorded(recipe, "masks")
        layers: dict[int, np.ndarray] = {}
        for index, (key, path) in enumerate(zip(keys, job.masks, strict=True)):
            found = find_mask(path, recorded[index] if index < len(recorded) else None, self.folder)
            if found is None:
                problems.append(f"the mask {shown(path.name)} no longer exists")
                continue
            try:
                check_input_file(found)  # never open a FIFO or a device
                weight = load_mask(found).weight
            except (InputError, OSError) as error:
                problems.append(error_text(error, found.name))
                continue
            if self.masks.size[0]:
                layers[key] = np.round(resized_weight(weight, self.masks.size) * 255.0).astype(np.uint8)
        self.masks.set_layers(layers)
        return problems

    def _restore_style_masks(
        self, job: StyleJob, recipe: Mapping[str, Any] | None, keys: list[int]
    ) -> list[str]:
        self.style_masks = {}
        problems = []
        if job.style_masks and len(job.style_masks) == len(keys):
            recorded = _recorded(recipe, "style_masks")
            for index, (key, path) in enumerate(zip(keys, job.style_masks, strict=True)):
                if path is None:
                    continue
                found = find_mask(path, recorded[index] if index < len(recorded) else None)
                if found is None:
                    problems.append(f"the painting's mask {shown(path.name)} no longer exists")
                else:
                    self.style_masks[key] = found
        self.editor.set_style_masks({key: path.name for key, path in self.style_masks.items()})
        return problems


def _recorded(recipe: Mapping[str, Any] | None, kind: str) -> list[Any]:
    """A recipe's descriptions of the masks of one kind ("masks", "style_masks"), or none."""
    inputs = recipe.get("inputs") if isinstance(recipe, Mapping) else None
    entries = inputs.get(kind) if isinstance(inputs, Mapping) else None
    return entries if isinstance(entries, list) else []


def _stacked_over(widget: QWidget, other: QWidget) -> QStackedWidget:
    """Put ``widget`` in a stack with ``other`` where it stands in its layout, so either can take the
    same place (the editor takes the canvas's, whatever the window's layout around it)."""
    parent = widget.parentWidget()
    layout = parent.layout() if parent is not None else None
    stack = QStackedWidget()
    stack.setObjectName("CanvasStack")
    if isinstance(layout, QBoxLayout):
        index = layout.indexOf(widget)
        stretch = layout.stretch(index)
        layout.insertWidget(index, stack, stretch)
    stack.addWidget(widget)
    stack.addWidget(other)
    stack.setCurrentWidget(widget)
    return stack
