"""Crash safety: the latest image of a run and its recipe, kept on disk while it runs.

The files exist only while a run is in progress (a finished, stopped or
failed run removes them), so finding them at start means the last session
ended without a chance to clean up.  Both are written atomically, the image
through ``engine.results.write_result`` (temp file, then rename).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import atomic_write_text
from engine.metadata import read_recipe
from engine.params import StyleJob
from engine.recipe import build_recipe
from engine.records import Progress
from engine.results import OutputSpec, snapshot, write_result

log = logging.getLogger(__name__)

# A crash should lose at most a minute of work; half that loses less for a few PNG writes an hour.
AUTOSAVE_INTERVAL = 30.0


@dataclass(frozen=True)
class PendingAutosave:
    image_path: Path
    recipe: dict[str, Any]
    iteration: int
    saved_at: float  # time.time()


class AutosaveStore:
    """The autosave files in the app data folder; ``snapshot`` runs in the worker thread."""

    IMAGE_NAME = "autosave.png"
    INFO_NAME = "autosave.json"

    def __init__(self, folder: Path, interval: float = AUTOSAVE_INTERVAL) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self.writes = 0

    @property
    def image_path(self) -> Path:
        return self.folder / self.IMAGE_NAME

    @property
    def info_path(self) -> Path:
        return self.folder / self.INFO_NAME

    def snapshot(self, job: StyleJob, image: np.ndarray, progress: Progress) -> None:
        finished = snapshot(job, progress, image, message="autosave during a run")
        recipe = build_recipe(finished)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_result(finished, OutputSpec(self.image_path, overwrite=True), recipe=recipe)
        info = {"recipe": recipe, "iteration": progress.iteration, "saved_at": time.time()}
        atomic_write_text(self.info_path, json.dumps(info, default=str))
        self.writes += 1
        log.debug("autosaved iteration %d to %s", progress.iteration, self.image_path)

    def pending(self) -> PendingAutosave | None:
        """What an unclean exit left behind, or None."""
        if not self.image_path.is_file():
            return None
        recipe: dict[str, Any] = {}
        iteration = 0
        saved_at = self.image_path.stat().st_mtime
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
            recipe = dict(info.get("recipe") or {})
            iteration = int(info.get("iteration", 0))
            saved_at = float(info.get("saved_at", saved_at))
        except (OSError, ValueError, TypeError, AttributeError):
            # The PNG carries the recipe too; the JSON file only adds when and how far.
            try:
                recipe = read_recipe(self.image_path)
            except Exception:  # noqa: BLE001 - a damaged autosave still offers its pixels
                log.warning("autosave %s has no readable recipe", self.image_path)
        return PendingAutosave(self.image_path, recipe, iteration, saved_at)

    def clear(self) -> None:
        for path in (self.image_path, self.info_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("could not remove %s: %s", path, error)
