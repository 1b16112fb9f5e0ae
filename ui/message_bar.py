"""An inline message strip: errors and notices appear in the window, never as a storm of dialogs.

Messages often carry text from outside (file names, values read from a recipe), so the strip shows
them as plain text with every control character escaped, never as HTML, and keeps them to a few
lines of sensible width whatever they hold; the tooltip has the whole message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton, QWidget

from ui.imports import plain_tooltip, printable_lines
from ui.qtutil import icon

# More lines than this (one per file that could not be used) are summed up in one last line.
MAX_LINES = 6
# A run of characters without a space longer than this (a long file name) is shortened in the middle,
# so one word cannot make the window wider than the screen.
MAX_WORD = 72
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1},}}")


def _shorten_word(match: re.Match[str]) -> str:
    word = match.group(0)
    keep = (MAX_WORD - 1) // 2
    return f"{word[:keep]}…{word[-keep:]}"


def display_text(text: str) -> str:
    """What the strip shows of ``text``: inert, at most MAX_LINES lines, no overlong words."""
    lines = printable_lines(text).split("\n")
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"… and {len(lines) - MAX_LINES + 1} more (point here to see all)"]
    return "\n".join(_LONG_WORD.sub(_shorten_word, line) for line in lines)


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class MessageBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.setSpacing(8)
        self._icon = QLabel()
        self._icon.setFixedWidth(18)
        self._text = QLabel()
        self._text.setTextFormat(Qt.TextFormat.PlainText)
        self._text.setWordWrap(True)
        self._text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._text.setMinimumWidth(80)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._text.setObjectName("MessageText")
        self._action = QPushButton()
        self._action.setToolTip("Act on this message")
        self._action.hide()
        self._action_callback: Callable[[], None] | None = None
        self._action.clicked.connect(self._on_action)
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setAutoRaise(True)
        close.setToolTip("Dismiss this message")
        close.clicked.connect(self.dismiss)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._text, 1)
        layout.addWidget(self._action, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.level = Level.INFO
        self.full_text = ""
        self.hide()

    @property
    def text(self) -> str:
        """The whole message (inert), as the tooltip has it; empty while hidden."""
        return "" if self.isHidden() else self.full_text

    @property
    def shown_text(self) -> str:
        """What the strip displays: the message, shortened to a few lines of sensible width."""
        return "" if self.isHidden() else self._text.text()

    def show_message(
        self,
        text: str,
        level: Level = Level.INFO,
        action: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        self.level = Level(level)
        self.setProperty("level", self.level.value)
        # Re-polish so the stylesheet's [level="..."] rule takes effect.
        self.style().unpolish(self)
        self.style().polish(self)
        self._icon.setPixmap(icon(self.level.value).pixmap(16, 16))
        self.full_text = printable_lines(text)
        self._text.setText(display_text(text))
        self._text.setToolTip(plain_tooltip("\n".join(self.full_text.split("\n")[:60])))
        if action is None:
            self._action.hide()
            self._action_callback = None
        else:
            self._action.setText(action[0])
            self._action.setToolTip(f"{action[0].rstrip('…')} (and dismiss this message)")
            self._action_callback = action[1]
            self._action.show()
        self.show()

    def dismiss(self) -> None:
        self._text.setText("")
        self.full_text = ""
        self._action_callback = None
        self.hide()

    def _on_action(self) -> None:
        callback = self._action_callback
        self.dismiss()
        if callback is not None:
            callback()
