"""History entries of a kept session: on screen at once from their thumbnails and recipes, with the
full picture read from disk the first time it is needed (viewing, exporting, continuing).

Reading every picture at start would cost about 0.1 s per 1024 px entry on a 2-core CPU (measured),
so forty entries would hold the window for four seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtGui import QImage

from engine.errors import InputError
from engine.imageio import load_image
from engine.params import StyleJob
from engine.recipe import job_from_recipe
from engine.records import Finished, StopReason
from ui.model import HistoryEntry
from ui.qtutil import rgb_to_qimage
from ui.session.manifest import EntryRecord

log = logging.getLogger(__name__)

# input_file(sha256) -> the kept copy of that input, or None.
FindCopy = Callable[[str], Path | None]


def _recorded_hash(recipe: Mapping[str, Any], kind: str, index: int = 0) -> str:
    inputs = recipe.get("inputs")
    entry = inputs.get(kind) if isinstance(inputs, Mapping) else None
    if isinstance(entry, list):
        entry = entry[index] if index < len(entry) else None
    sha = entry.get("sha256") if isinstance(entry, Mapping) else None
    return sha if isinstance(sha, str) else ""


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def relocated(job: StyleJob, recipe: Mapping[str, Any], find_copy: FindCopy) -> StyleJob:
    """The job with each photo and painting that is gone from where the recipe says replaced by the
    session's copy of it (found by its SHA-256), so Restore and Continue still have their inputs."""

    def where(path: Path, kind: str, index: int = 0) -> Path:
        if _exists(path):
            return path
        copy = find_copy(_recorded_hash(recipe, kind, index))
        return copy if copy is not None else path

    content = where(job.content, "content")
    styles = tuple(where(style, "styles", index) for index, style in enumerate(job.styles))
    return dataclasses.replace(job, content=content, styles=styles)


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


def finished_from_recipe(
    recipe: Mapping[str, Any], job: StyleJob, image: np.ndarray, alpha: np.ndarray | None = None
) -> Finished:
    """The Finished record a recipe describes, with ``image`` as its picture."""
    try:
        reason = StopReason(str(recipe.get("reason")))
    except ValueError:
        reason = StopReason.STOPPED
    losses = recipe.get("losses")
    iterations = recipe.get("iterations")
    message = recipe.get("message")
    return Finished(
        job=job,
        image=image,
        iterations=int(_number(iterations)) if isinstance(iterations, int) else 0,
        seconds=_number(recipe.get("seconds")),
        device=str(recipe.get("device") or ""),
        losses={str(k): v for k, v in losses.items() if isinstance(v, (int, float))}
        if isinstance(losses, Mapping)
        else {},
        reason=reason,
        message=message if isinstance(message, str) else "",
        alpha=alpha,
        weights_id=str(recipe.get("weights_id") or ""),
        extra={"inputs": _input_hashes(job, recipe)},
    )


def _input_hashes(job: StyleJob, recipe: Mapping[str, Any]) -> dict[str, str]:
    """The inputs' SHA-256 as the recipe recorded them, by the job's (relocated) paths: an export
    records them without reading the files again."""
    hashes = {str(job.content): _recorded_hash(recipe, "content")}
    for index, style in enumerate(job.styles):
        hashes[str(style)] = _recorded_hash(recipe, "styles", index)
    return {path: sha for path, sha in hashes.items() if sha}


def output_size(recipe: Mapping[str, Any]) -> tuple[int, int]:
    output = recipe.get("output")
    if isinstance(output, Mapping):
        width, height = output.get("width"), output.get("height")
        if (
            isinstance(width, int)
            and isinstance(height, int)
            and 0 < width < 1 << 20
            and 0 < height < 1 << 20
        ):
            return width, height
    return 1, 1


class StoredEntry(HistoryEntry):
    """An entry of an earlier session (or an opened session file); its pixels load on first use."""

    def __init__(
        self, record: EntryRecord, picture: Path, thumbnail: QImage | None, find_copy: FindCopy
    ) -> None:
        # HistoryEntry's own __init__ would want the pixels now; these fields are set by hand.
        self.number = record.number
        self.created = record.created
        self.label = record.label
        self.exported = record.exported
        self.record = record
        self.picture = picture
        self.kept = True  # from an earlier session the artist chose to keep
        self._thumbnail = thumbnail if thumbnail is not None and not thumbnail.isNull() else None
        job = job_from_recipe(record.recipe, source=picture)
        self._job = relocated(job, record.recipe, find_copy)
        width, height = output_size(record.recipe)
        # For the title and tooltip: the record without its pixels (a zero-byte view of the right shape).
        blank = np.broadcast_to(np.zeros(3, dtype=np.float32), (height, width, 3))
        summary = finished_from_recipe(record.recipe, self._job, blank)
        self._described = HistoryEntry(record.number, summary, QImage(), record.created, record.label)
        self._loaded: tuple[Finished, QImage] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def _load(self) -> tuple[Finished, QImage]:
        if self._loaded is None:
            try:
                picture = load_image(self.picture)
            except InputError as error:
                raise InputError(f"the picture of run #{self.number} cannot be read: {error}") from None
            finished = finished_from_recipe(self.record.recipe, self._job, picture.rgb, picture.alpha)
            self._loaded = (finished, rgb_to_qimage(picture.rgb))
            log.info("loaded run #%d from %s", self.number, self.picture)
        return self._loaded

    @property  # type: ignore[override]
    def finished(self) -> Finished:
        return self._load()[0]

    @finished.setter
    def finished(self, value: Finished) -> None:
        self._loaded = (value, self._loaded[1] if self._loaded else rgb_to_qimage(value.image))

    @property  # type: ignore[override]
    def image(self) -> QImage:
        return self._load()[1]

    @image.setter
    def image(self, value: QImage) -> None:
        self._loaded = (self.finished, value)

    @property
    def thumbnail_source(self) -> QImage:
        return self._thumbnail if self._thumbnail is not None else self.image

    @property
    def title(self) -> str:
        return self._described.title

    @property
    def details(self) -> str:
        return self._described.details

    @property
    def job(self) -> StyleJob:
        """The entry's job without reading its picture (Restore needs no pixels)."""
        return self._job
