"""Edit > Preferences…: how much disk the kept session may use."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ui.settings import MIN_SESSION_LIMIT_MB, Settings


class PreferencesDialog(QDialog):
    def __init__(
        self, settings: Settings, usage: int, folder: str, kept: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("PreferencesDialog")
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(520)
        self.settings = settings
        tip = (
            "History's pictures (PNG with their recipes), their thumbnails and copies of the "
            "photos and paintings are kept on disk so the next start opens where you left off. Beyond "
            "this size the oldest results go: exported ones first, never the newest."
        )
        self.limit = QDoubleSpinBox()
        self.limit.setObjectName("SessionLimit")
        self.limit.setDecimals(1)
        self.limit.setRange(MIN_SESSION_LIMIT_MB / 1024, 10_000.0)
        self.limit.setSingleStep(0.5)
        self.limit.setSuffix(" GB")
        self.limit.setValue(settings.session_limit_mb() / 1024)
        self.limit.setToolTip(tip)
        label = QLabel("History may use up to")
        label.setToolTip(tip)
        now = (
            f"{usage / (1 << 20):.0f} MB in use now, in {folder}"
            if kept
            else (f"History is not kept: {folder} cannot be written.")
        )
        self.usage = QLabel(now)
        self.usage.setObjectName("Caption")
        self.usage.setTextFormat(Qt.TextFormat.PlainText)
        self.usage.setWordWrap(True)
        self.usage.setToolTip("Where the kept session lives and how much of the limit it uses")
        heading = QLabel("History between starts")
        heading.setObjectName("Heading")
        form = QFormLayout()
        form.addRow(heading)
        form.addRow(label, self.limit)
        form.addRow("", self.usage)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def accept(self) -> None:
        self.settings.set_session_limit_mb(round(self.limit.value() * 1024))
        super().accept()
