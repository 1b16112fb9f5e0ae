"""What a stepper yields for each iteration and returns when its level ends."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
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
class StepperState:
    """Where an optimiser stood after its last complete iteration, on the CPU: with it a stepper
    goes on exactly as if it had never stopped (same pixels for the same seed on one device)."""

    # The image the next iteration starts from (not yet measured), and the last measured one.
    image: Tensor
    kept: Tensor
    kept_losses: Mapping[str, float]
    # torch's per-parameter optimiser state (L-BFGS history, Adam moments), tensors on the CPU.
    optimiser: Mapping[str, Any] = field(default_factory=dict)
    # Iterations of the level already done, and the L-BFGS bookkeeping that depends on them.
    done: int = 0
    loss_scale: float | None = None
    just_restarted: bool = False


def cpu_copy(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of an optimiser's state with every tensor on the CPU (lists of tensors too)."""

    def copied(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, list | tuple):
            return [copied(item) for item in value]
        return value

    return {key: copied(value) for key, value in state.items()}


def placed(state: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """``state`` with every tensor moved to ``device`` (copies: the saved state stays reusable)."""

    def moved(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.to(device, copy=True)
        if isinstance(value, list | tuple):
            return [moved(item) for item in value]
        return value

    return {key: moved(value) for key, value in state.items()}


@dataclass(frozen=True)
class LevelEnd:
    """How a level ended: the image it leaves (CPU) and why it stopped."""

    image: Tensor
    reason: StopReason = StopReason.COMPLETED
    message: str = ""
    # Set when a stop or time limit ended the level early, or a stepper made with level_ends=False
    # paused after its count (the float32 finish goes on from it): what going on needs.
    state: StepperState | None = None


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
