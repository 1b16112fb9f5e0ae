"""Every question the window asks the user, behind one object tests can replace.

Tests subclass ``Prompter`` with canned answers, so no modal dialog ever
blocks a test run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QGridLayout, QMessageBox, QWidget

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


def save_dialog(
    parent: QWidget | None, title: str, suggested: Path, filters: list[str], selected: str, options: QWidget
) -> QFileDialog:
    """Qt's own save dialog (a native one cannot hold widgets of ours) with ``options`` under the list."""
    dialog = QFileDialog(parent, title, str(suggested.parent))
    dialog.setObjectName("SaveDialog")
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setNameFilters(filters)
    dialog.selectNameFilter(selected)
    dialog.selectFile(suggested.name)
    layout = dialog.layout()
    if isinstance(layout, QGridLayout):
        layout.addWidget(options, layout.rowCount(), 0, 1, layout.columnCount())
    elif layout is not None:
        layout.addWidget(options)
    set_filter = getattr(options, "set_filter", None)
    if callable(set_filter):
        set_filter(selected)
        dialog.filterSelected.connect(set_filter)
    return dialog


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
        self, title: str, suggested: Path, filters: list[str], selected: str, options: QWidget | None = None
    ) -> tuple[Path | None, str]:
        """The chosen path and filter.  The dialog itself asks before replacing an existing file.

        ``options`` (the export's quality and privacy) is shown under the file list; it may have a
        ``set_filter(text)`` method, told the chosen filter as it changes.
        """
        if options is None:
            name, chosen = QFileDialog.getSaveFileName(
                self.parent, title, str(suggested), ";;".join(filters), selected
            )
            return (Path(name) if name else None), chosen
        dialog = save_dialog(self.parent, title, suggested, filters, selected, options)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.selectedFiles():
                return None, selected
            return Path(dialog.selectedFiles()[0]), dialog.selectedNameFilter()
        finally:
            options.setParent(None)  # the caller reads the options after the dialog is gone
            dialog.deleteLater()

    def choose(self, title: str, text: str, choices: list[str], cancel: int) -> int:
        """Which of ``choices`` (button texts, the first the default) was pressed; ``cancel`` when the
        box was closed. The choice at ``cancel`` is the box's Escape; one named "Discard…" is marked
        destructive."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(text)
        buttons = []
        for index, choice in enumerate(choices):
            role = (
                QMessageBox.ButtonRole.RejectRole
                if index == cancel
                else QMessageBox.ButtonRole.DestructiveRole
                if choice.startswith("Discard")
                else QMessageBox.ButtonRole.AcceptRole
            )
            buttons.append(box.addButton(choice, role))
        box.setDefaultButton(buttons[0])
        if 0 <= cancel < len(buttons):
            box.setEscapeButton(buttons[cancel])
        box.exec()
        clicked = box.clickedButton()
        return next((index for index, button in enumerate(buttons) if button is clicked), cancel)

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
