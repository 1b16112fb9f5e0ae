"""The photo pane: drop, paste or open the content image; shows it and its size."""

from __future__ import annotations

import logging

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QImage,
    QPainter,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ui.imports import ImageImporter, ImportedImage, ImportResult, plain_tooltip, shown
from ui.qtutil import ElidedLabel, guarded, tool_button
from ui.thumbs import ImageThumb, mime_may_hold_image, paste_into

log = logging.getLogger(__name__)


class ContentPane(QFrame):
    """The photo to be painted."""

    imageChanged = Signal(object)  # ImportedImage | None  # noqa: N815 - Qt naming
    problems = Signal(list)  # list[str], one line per file
    openRequested = Signal()  # noqa: N815
    # Several images given at once: the first is the photo, these others are meant as styles.
    stylesDropped = Signal(list)  # list[ImportedImage]  # noqa: N815

    def __init__(self, importer: ImageImporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContentPane")
        self.importer = importer
        self._image: ImportedImage | None = None
        self.setAcceptDrops(True)

        self.thumb = ImageThumb(
            "Drop a photo here\n\nor Open… (Ctrl+O) or paste (Ctrl+V)", minimum=QSize(200, 150)
        )
        self.thumb.setToolTip(
            "The photo to paint: its shapes and composition are kept while the style's colours and "
            "brush strokes are painted over it. Drop a file or image from a browser here; drop several "
            "and the first is the photo, the others styles."
        )
        self.name_label = ElidedLabel("")
        # A file name is shown as it is: never as HTML (a name like "<img src=…>.png" would load that).
        self.name_label.setTextFormat(Qt.TextFormat.PlainText)
        self.name_label.setObjectName("StyleName")
        self.name_label.setToolTip("The photo's file")
        self.caption = QLabel("No photo yet")
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setObjectName("Caption")
        self.caption.setToolTip("Size of the photo in pixels")

        self.open_button = self._button("open", "Open…", "Choose the photo to paint from a file (Ctrl+O)")
        self.paste_button = self._button(
            "paste", "Paste", "Use the image on the clipboard as the photo (Ctrl+V)"
        )
        self.clear_button = self._button("remove", "Remove", "Remove the photo")
        self.open_button.clicked.connect(self.openRequested)
        self.paste_button.clicked.connect(self.paste)
        # Checkable: the middle of the window paints where each style goes while it is down.
        self.regions_button = self._button(
            "regions", "Paint regions", "Paint where each style goes (Ctrl+M); the rest stays the photo"
        )
        self.regions_button.setCheckable(True)
        self.regions_button.setShortcut("Ctrl+M")
        self.clear_button.clicked.connect(self.clear)

        details = QHBoxLayout()
        details.setSpacing(8)
        details.addWidget(self.name_label, 1)
        details.addWidget(self.caption)
        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.paste_button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.thumb, 1)
        layout.addLayout(details)
        layout.addLayout(buttons)
        # Regions on a row of their own: the feature is named in full, whatever the pane's width.
        self.regions_caption = QLabel("")
        self.regions_caption.setObjectName("Caption")
        self.regions_caption.setTextFormat(Qt.TextFormat.PlainText)
        self.regions_caption.setToolTip("Which styles have a painted region; unpainted places keep the photo")
        regions_row = QHBoxLayout()
        regions_row.setSpacing(6)
        regions_row.addWidget(self.regions_button)
        regions_row.addWidget(self.regions_caption, 1)
        layout.addLayout(regions_row)
        self._update_caption()

    def _button(self, icon_name: str, text: str, tip: str) -> QToolButton:
        return tool_button(icon_name, text, tip)

    # -- state ----------------------------------------------------------------
    @property
    def image(self) -> ImportedImage | None:
        return self._image

    def set_image(self, image: ImportedImage | None) -> None:
        self._image = image
        self.thumb.set_image(image.preview if image is not None else None)
        self._update_caption()
        self.imageChanged.emit(image)

    def clear(self) -> None:
        self.set_image(None)

    def show_regions(self, overlay: QImage | None) -> None:
        """The painted regions' colours over the photo's thumbnail (None: the photo alone)."""
        image = self._image
        if image is None:
            return
        if overlay is None or overlay.isNull():
            self.thumb.set_image(image.preview)
            return
        shown_image = image.preview.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        painter = QPainter(shown_image)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(shown_image.rect(), overlay)
        painter.end()
        self.thumb.set_image(shown_image)

    def _update_caption(self) -> None:
        image = self._image
        self.clear_button.setEnabled(image is not None)
        self.name_label.setVisible(image is not None)
        if image is None:
            self.caption.setText("No photo yet")
        else:
            self.name_label.set_full_text(shown(image.name))
            self.name_label.setToolTip(plain_tooltip(image.path))
            self.caption.setText(image.size_text)

    # -- input ----------------------------------------------------------------
    def accept_result(self, result: ImportResult) -> None:
        if result.images:
            self.set_image(result.images[0])
            if len(result.images) > 1:
                self.stylesDropped.emit(result.images[1:])
        if result.errors:
            self.problems.emit(list(result.errors))

    def import_mime(self, mime: QMimeData, what: str = "Dropped image") -> None:
        self.accept_result(self.importer.from_mime(mime, what))

    @guarded
    def paste(self) -> None:
        paste_into(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if mime_may_hold_image(event.mimeData()):
            event.acceptProposedAction()
            self.thumb.set_hover(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self.thumb.set_hover(False)

    @guarded
    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.thumb.set_hover(False)
        event.acceptProposedAction()
        self.import_mime(event.mimeData())
