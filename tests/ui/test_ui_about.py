"""The About box is readable in the studio's dark theme: every label stands out from its background."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor

from ui.about import AboutDialog
from ui.theme import dark_palette

# WCAG AA for normal text.
MINIMUM_CONTRAST = 4.5


def _luminance(colour: QColor) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green()) + 0.0722 * channel(colour.blue())


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _best_contrast_in(image: Any, x0: int, x1: int, y0: int, y1: int, background: QColor) -> float:
    """The strongest contrast of any pixel in the box against the background (a glyph's core)."""
    best = 1.0
    for y in range(y0, y1):
        for x in range(x0, x1):
            best = max(best, contrast(image.pixelColor(x, y), background))
    return best


def test_about_labels_are_readable_on_the_dark_theme(qtbot: Any, qapp: Any) -> None:
    previous = qapp.palette()
    qapp.setPalette(dark_palette())  # as the running app does before any window (ui.theme)
    try:
        dialog = AboutDialog("CPU (2 threads)", "default")
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        background = dialog.palette().window().color()
        image = dialog.details.grab().toImage()
    finally:
        qapp.setPalette(previous)
    width, height = image.width(), image.height()
    assert image.pixelColor(width - 1, height - 1) == background  # the label sits on the dialog's grey
    # The row names (the left part) and the values (the right part), each judged on its own.
    keys = _best_contrast_in(image, 0, int(width * 0.25), 0, height, background)
    values = _best_contrast_in(image, int(width * 0.5), width, 0, height, background)
    assert keys >= MINIMUM_CONTRAST, keys
    assert values >= MINIMUM_CONTRAST, values
