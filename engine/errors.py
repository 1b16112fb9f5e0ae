"""Errors the front ends turn into one-line messages.

Every error the user can cause (a bad file, a bad number) is an ``InputError``;
its message is one line that names the file or the parameter and the problem.
Front ends print ``str(error)`` and never a traceback for these.
"""

from __future__ import annotations

from pathlib import Path

from engine.text import printable


class PainterlyError(Exception):
    """Base class for errors with a message meant for the user."""


class InputError(PainterlyError, ValueError):
    """Bad input: a file that cannot be used or a parameter out of range."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        text = f"{self.path}: {message}" if self.path is not None else message
        # One line, and inert: a file name or a value read from a file may carry escape sequences.
        super().__init__(printable(" ".join(text.split())))


class WeightsError(InputError):
    """A network weights file is missing, wrong, truncated or unsafe."""


class OutputExistsError(InputError):
    """Saving would replace an existing file and overwriting was not asked for."""


class DeviceError(PainterlyError):
    """The requested compute device is not available."""
