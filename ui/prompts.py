"""Every question the window asks the user, behind one object tests can replace.

Tests subclass ``Prompter`` with canned answers, so no modal dialog ever
blocks a test run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;All files (*)"
RECIPE_FILTER = "Painterly images (*.png *.jpg *.jpeg *.webp *.tif *.tiff);;All files (*)"
WEIGHTS_FILTER = "Weights (*.pth *.pt *.safetensors *.mat *.bin *.h5);;All files (*)"

# (filter text, extension, bit depth)
EXPORT_FORMATS: tuple[tuple[str, str, int], ...] = (
    ("PNG image (*.png)", ".png", 8),
    ("PNG image, 16 bits per channel (*.png)", ".png", 16),
    ("JPEG image (*.jpg *.jpeg)", ".jpg", 8),
    ("WebP image (*.webp)", ".webp", 8),
    ("TIFF image (*.tif *.tiff)", ".tif", 8),
    ("TIFF image, 16 bits per channel (*.tif *.tiff)", ".tif", 16),
)


class Prompter:
    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def open_images(self, title: str, folder: Path | None, multiple: bool = False) -> list[Path]:
        start = str(folder) if folder else ""
        if multiple:
            names, _ = QFileDialog.getOpenFileNames(self.parent, title, start, IMAGE_FILTER)
            return [Path(n) for n in names]
        name, _ = QFileDialog.getOpenFileName(self.parent, title, start, IMAGE_FILTER)
        return [Path(name)] if name else []

    def open_file(self, title: str, folder: Path | None, file_filter: str) -> Path | None:
        name, _ = QFileDialog.getOpenFileName(self.parent, title, str(folder) if folder else "", file_filter)
        return Path(name) if name else None

    def save_file(
        self, title: str, suggested: Path, filters: list[str], selected: str
    ) -> tuple[Path | None, str]:
        """The chosen path and filter.  The dialog itself asks before replacing an existing file."""
        name, chosen = QFileDialog.getSaveFileName(
            self.parent, title, str(suggested), ";;".join(filters), selected
        )
        return (Path(name) if name else None), chosen

    def ask(self, title: str, text: str, accept: str, reject: str) -> bool:
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        # File names go into these questions: never let Qt guess that one is rich text.
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(text)
        yes = box.addButton(accept, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(reject, QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(yes)
        box.exec()
        return box.clickedButton() is yes
