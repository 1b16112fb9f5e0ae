"""Immutable records the engine's generator yields.

A run yields ``Progress`` records, one per iteration, and ends with exactly
one ``Finished``.  Front ends never reach into the engine's state; everything
they show comes from these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from engine.params import StyleJob

if TYPE_CHECKING:
    from engine.resume import ResumePoint


def _frozen_array(array: np.ndarray | None) -> np.ndarray | None:
    if array is not None:
        array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Progress:
    iteration: int  # 1-based, counted over the whole run
    total: int
    elapsed: float  # seconds since the run started
    # "content", "style", "tv" and "total", each already multiplied by its weight.
    losses: Mapping[str, float]
    # uint8 RGB, H x W x 3; present every few iterations (see engine.stylize).
    preview: np.ndarray | None = None
    # Coarse-to-fine: which level (1-based) of how many, and its size.
    level: int = 1
    levels: int = 1
    size: tuple[int, int] = (0, 0)  # (width, height) of the image being optimised
    # A one-line notice for the user (e.g. a fallback that was taken).
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "losses", MappingProxyType(dict(self.losses)))
        _frozen_array(self.preview)

    @property
    def fraction(self) -> float:
        return self.iteration / self.total if self.total else 0.0


class StopReason(StrEnum):
    COMPLETED = "completed"
    STOPPED = "stopped"  # the caller asked to stop
    TIME_LIMIT = "time_limit"
    NUMERICAL_ERROR = "numerical_error"  # a loss became NaN/inf; last good image kept
    OUT_OF_MEMORY = "out_of_memory"  # nothing smaller was left to try; last good image kept


@dataclass(frozen=True)
class Finished:
    """The result of a run, complete or not: the image and how it was made."""

    job: StyleJob
    # float32 RGB in [0, 1], H x W x 3, at the output size.
    image: np.ndarray
    iterations: int
    seconds: float
    device: str
    losses: Mapping[str, float]
    reason: StopReason = StopReason.COMPLETED
    message: str = ""
    # float32 alpha in [0, 1], H x W, when the content image had transparency.
    alpha: np.ndarray | None = None
    # Identifier of the network weights used (see engine.weights).
    weights_id: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)
    # A run that stopped early: what going on exactly from where it stopped needs (engine.resume).
    resume: ResumePoint | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "losses", MappingProxyType(dict(self.losses)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        _frozen_array(self.image)
        _frozen_array(self.alpha)

    @property
    def completed(self) -> bool:
        return self.reason is StopReason.COMPLETED


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


Record = Progress | Finished
