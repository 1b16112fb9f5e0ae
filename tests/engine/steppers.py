"""Test helper: run a stepper (engine.run.steps.Stepper) to its end."""

from __future__ import annotations

from engine.run.steps import LevelEnd, Step, Stepper


def drain(stepper: Stepper) -> tuple[list[Step], LevelEnd]:
    """Every step a stepper yields, and the end it returns."""
    steps = []
    while True:
        try:
            steps.append(next(stepper))
        except StopIteration as end:
            return steps, end.value
