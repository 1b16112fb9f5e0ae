"""Restoring a job into the window: from a Painterly image's recipe, a history entry or the autosave.

The parameters go into the panel, and the inputs into the photo and style panes where their
files still exist (as the job names them, else where the recipe recorded them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import InputError
from engine.files import safe_exists
from engine.metadata import read_recipe, sidecar_path
from engine.params import StyleJob
from engine.recipe import job_from_recipe, relocated_job
from ui.image_pane import ContentPane
from ui.imports import ImageImporter, ImportedImage, check_input_file, error_text, shown
from ui.message_bar import Level
from ui.param_panel import ParamPanel
from ui.prompts import RECIPE_FILTER, Prompter
from ui.qtutil import describe_exception, guarded
from ui.settings import Settings
from ui.style_list import StyleList

log = logging.getLogger(__name__)


def find_input(path: Path, recorded: dict[str, Any] | None) -> Path | None:
    """The input as the job names it, else at the absolute path the recipe recorded."""
    candidates = [path]
    if recorded and recorded.get("path"):
        candidates.append(Path(str(recorded["path"])))
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate
        except (OSError, ValueError):  # a name too long or with a NUL: a recipe is untrusted text
            continue
    return None


class JobRestorer:
    """Open recipe (Ctrl+Shift+R), and the restoring of a job that a history entry or the autosave holds."""

    def __init__(
        self,
        prompter: Prompter,
        settings: Settings,
        importer: ImageImporter,
        content_pane: ContentPane,
        style_list: StyleList,
        params_panel: ParamPanel,
        say: Callable[[str, Level], None],
        changed: Callable[[], None],
    ) -> None:
        self.prompter = prompter
        self.settings = settings
        self.importer = importer
        self.content_pane = content_pane
        self.style_list = style_list
        self.params_panel = params_panel
        self.say = say
        self.changed = changed  # called once a job is in place
        # Paints a job's regions back (ui.regions) once its styles are in place; says what it could not.
        self.restore_regions: Callable[[StyleJob, dict[str, Any] | None], list[str]] | None = None

    def report_exception(self, error: BaseException) -> None:
        """Where ``guarded`` sends what went wrong."""
        self.say(describe_exception(error), Level.ERROR)

    @guarded
    def open_recipe(self) -> None:
        path = self.prompter.open_file(
            "Open a Painterly image to restore its recipe", self.settings.last_folder("recipe"), RECIPE_FILTER
        )
        if path is not None:
            self.open_recipe_file(path)

    def open_recipe_file(self, path: Path) -> None:
        try:
            # The image and its sidecar are opened only once known to be regular files (a FIFO blocks).
            for candidate in (path, sidecar_path(path)):
                if safe_exists(candidate):
                    check_input_file(candidate)
            recipe = read_recipe(path)
            # A picture exported with file names only finds its inputs beside it (as --continue does).
            job = relocated_job(recipe, job_from_recipe(recipe, source=path), path.parent)
        except InputError as error:
            named = error.path if error.path is not None else path
            self.say(f"No recipe restored: {error_text(error, named.name)}", Level.ERROR)
            return
        except Exception as error:  # noqa: BLE001 - a hostile recipe (nested 100000 deep, ...) is a message
            log.warning("reading the recipe of %s failed", shown(path), exc_info=True)
            self.say(
                f"No recipe restored: {shown(path.name)}: the recipe cannot be read ({type(error).__name__})",
                Level.ERROR,
            )
            return
        self.settings.set_last_folder("recipe", path)
        self.apply_job(job, path.name, recipe)

    def apply_job(
        self, job: StyleJob, source: str, recipe: dict[str, Any] | None = None, note: str = ""
    ) -> None:
        """Put a job's parameters in the panel and its inputs in the panes (those whose files still exist).

        ``note`` replaces the message said when everything was restored (Continue from this says its own).
        """
        self.params_panel.set_params(job.params)
        inputs = (recipe or {}).get("inputs") or {}
        if not isinstance(inputs, dict):
            inputs = {}
        recorded_styles = inputs.get("styles") if isinstance(inputs.get("styles"), list) else []
        missing: list[str] = []
        problems: list[str] = []

        found = find_input(job.content, inputs.get("content") if isinstance(inputs, dict) else None)
        if found is None:
            missing.append(shown(job.content.name))
        else:
            try:
                self.content_pane.set_image(self.importer.from_path(found))
            except (InputError, OSError) as error:
                problems.append(error_text(error, found.name))
        styles: list[tuple[ImportedImage, float]] = []
        for index, (style, blend) in enumerate(zip(job.styles, job.blend, strict=True)):
            recorded = recorded_styles[index] if index < len(recorded_styles) else None
            found = find_input(style, recorded if isinstance(recorded, dict) else None)
            if found is None:
                missing.append(shown(style.name))
                continue
            try:
                styles.append((self.importer.from_path(found), blend))
            except (InputError, OSError) as error:
                problems.append(error_text(error, found.name))
        if styles:
            # Blend values are relative; the sliders run 0..100, so scale the largest to 100.
            top = max(b for _, b in styles) or 1.0
            self.style_list.set_styles([(image, 100.0 * b / top) for image, b in styles])
        if self.restore_regions is not None:
            problems.extend(self.restore_regions(job, recipe))
        text = f"Restored every setting from {shown(source)}"
        if missing or problems:
            detail = []
            if missing:
                detail.append("these inputs no longer exist: " + ", ".join(missing))
            detail.extend(problems)
            warning = f"{note} But " if note else f"{text}; "
            self.say(warning + "; ".join(detail), Level.WARNING)
        else:
            self.say(note or f"{text}, with the photo and {len(styles)} style(s).", Level.INFO)
        self.changed()
