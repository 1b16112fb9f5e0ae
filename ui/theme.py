"""The studio's look: a neutral dark theme, so colours are judged against grey, not chrome."""

from __future__ import annotations

import logging

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ui.qtutil import RESOURCES, icon

log = logging.getLogger(__name__)

ACCENT = "#e39a3b"


def dark_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2a2a2c",
        QPalette.ColorRole.WindowText: "#e8e8e8",
        QPalette.ColorRole.Base: "#1f1f21",
        QPalette.ColorRole.AlternateBase: "#29292b",
        QPalette.ColorRole.ToolTipBase: "#3a3a3d",
        QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.PlaceholderText: "#8c8c90",
        QPalette.ColorRole.Text: "#e8e8e8",
        QPalette.ColorRole.Button: "#38383b",
        QPalette.ColorRole.ButtonText: "#e8e8e8",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#1a1a1a",
        QPalette.ColorRole.Link: "#f0b060",
        QPalette.ColorRole.Light: "#4a4a4e",
        QPalette.ColorRole.Midlight: "#3e3e42",
        QPalette.ColorRole.Mid: "#505055",
        QPalette.ColorRole.Dark: "#1a1a1c",
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(disabled, role, QColor("#77777b"))
    palette.setColor(disabled, QPalette.ColorRole.Highlight, QColor("#5a5a5e"))
    return palette


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setWindowIcon(icon("painterly"))
    sheet = RESOURCES / "style.qss"
    try:
        app.setStyleSheet(sheet.read_text(encoding="utf-8"))
    except OSError:
        log.warning("stylesheet %s not found; using the plain theme", sheet)
