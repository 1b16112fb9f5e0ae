"""What a stepper yields for each iteration and returns when its level ends."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

from torch import Tensor

from engine.records import StopReason


@dataclass(frozen=True)
class Step:
    """One iteration of a level."""

    # The image to show; its loss was measured (on the network's device).
    shown: Tensor
    # A CPU copy of the image to keep if the run ended now: the last one whose loss is known.
    kept: Tensor
    # "content", "style", "tv" and "total" of ``kept``'s evaluation.
    losses: Mapping[str, float]
    # A one-line notice for the user (an undone overshoot, a fallback taken).
    notice: str = ""


@dataclass(frozen=True)
class LevelEnd:
    """How a level ended: the image it leaves (CPU) and why it stopped."""

    image: Tensor
    reason: StopReason = StopReason.COMPLETED
    message: str = ""


Stepper = Generator[Step, None, LevelEnd]


class StopRequested(Exception):
    """Raised inside an optimiser's closure when the caller asked the run to stop."""


@dataclass(frozen=True)
class Control:
    """The caller's stop flag and the run's time limit, polled between iterations."""

    should_stop: Callable[[], bool]
    started: float  # time.perf_counter() at the start of the run
    max_seconds: float = 0.0  # 0: no limit

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def end_reason(self) -> StopReason | None:
        """Why the run must end before the next iteration, or None to go on."""
        if self.should_stop():
            return StopReason.STOPPED
        if self.max_seconds and self.elapsed >= self.max_seconds:
            return StopReason.TIME_LIMIT
        return None


def non_finite_message(losses: Mapping[str, float], iteration: int) -> str | None:
    """The message for a loss that became NaN or infinite at ``iteration``, or None if all are finite."""
    if all(math.isfinite(value) for value in losses.values()):
        return None
    bad = ", ".join(name for name, value in losses.items() if not math.isfinite(value) and name != "total")
    return (
        f"the {bad or 'total'} loss became {losses['total']} at iteration {iteration}; "
        "stopped and kept the last good image (try smaller weights or a lower learning rate)"
    )
