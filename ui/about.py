"""The About box: versions, the device and the network weights in use."""

from __future__ import annotations

import sys
from html import escape

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.recipe import library_versions, painterly_version
from engine.text import printable
from ui.qtutil import icon

# How much of the text colour the row names keep (the rest is the background's).
KEY_EMPHASIS = 0.72


def mix(colour: QColor, background: QColor, share: float) -> QColor:
    """``share`` of ``colour`` over ``background``."""
    return QColor(
        round(colour.red() * share + background.red() * (1 - share)),
        round(colour.green() * share + background.green() * (1 - share)),
        round(colour.blue() * share + background.blue() * (1 - share)),
    )


def version_rows() -> list[tuple[str, str]]:
    """The versions a recipe records (engine.recipe), with Qt's and the platform added."""
    versions = library_versions()
    return [
        ("Painterly", painterly_version()),
        ("Python", f"{versions['python']} ({sys.platform})"),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("PyTorch", versions["torch"]),
        ("NumPy", versions["numpy"]),
        ("Pillow", versions["pillow"]),
    ]


class AboutDialog(QDialog):
    def __init__(self, device: str, weights: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Painterly")
        self.setWindowIcon(icon("painterly"))
        # The device's description and the weights' name can come from outside (an error, a recipe).
        rows = [*version_rows(), ("Device", printable(device)), ("Network weights", printable(weights))]
        self.rows = rows
        logo = QLabel()
        app_icon = icon("painterly")
        if not app_icon.isNull():
            logo.setPixmap(app_icon.pixmap(64, 64))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel(
            "<h2 style='margin-bottom:2px'>Painterly</h2>"
            "<p>A studio for neural style transfer after Gatys, Ecker &amp; Bethge, "
            "<i>Image Style Transfer Using Convolutional Neural Networks</i> (CVPR 2016).</p>"
        )
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # The names a little quieter than the values, yet readable: palette(mid) is a frame colour,
        # dark grey on the dark theme's dark grey (contrast 1.5:1). A mix of the text and the
        # background keeps above 4.5:1 (WCAG AA) in the dark theme and in a light one.
        key_colour = mix(self.palette().windowText().color(), self.palette().window().color(), KEY_EMPHASIS)
        table = "".join(
            f"<tr><td style='padding:2px 12px 2px 0;color:{key_colour.name()}'><b>{escape(k)}</b></td>"
            f"<td style='padding:2px 0'>{escape(v)}</td></tr>"
            for k, v in rows
        )
        details = QLabel(f"<table>{table}</table>")
        details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details.setToolTip("Versions of Painterly and the libraries it runs on; select to copy")
        self.details = details
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        copy = QPushButton("Copy details")
        copy.setToolTip("Copy these versions to the clipboard, e.g. for a bug report")
        copy.clicked.connect(self.copy_details)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(logo)
        layout.addWidget(title)
        layout.addWidget(details)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)

    def text(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.rows)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.text())
