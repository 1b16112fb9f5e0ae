"""An inline message strip: errors and notices appear in the window, never as a storm of dialogs."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from ui.qtutil import icon


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
        self._text.setWordWrap(True)
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
        self.hide()

    @property
    def text(self) -> str:
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
        self._text.setText(text)
        self._text.setToolTip(text)
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
        self._action_callback = None
        self.hide()

    def _on_action(self) -> None:
        callback = self._action_callback
        self.dismiss()
        if callback is not None:
            callback()
