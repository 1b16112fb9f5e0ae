"""Comparing two pictures: the one on view (A) and another (B): the photo, the instant draft or a run.

The result view draws them (``ui.result_view.ImageView``: a split line dragged on the picture, hold
Space or C to see B whole, X to flip); this controller decides what A and B are, in words and
pictures, following the run model. B is the photo unless the artist chose another picture: from the
view's Compare menu, or from a History thumbnail's menu ("Compare with the picture on view").
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QWidget

from ui.draft import Draft
from ui.model import HistoryEntry, RunModel
from ui.result_view import ResultView

PHOTO = "Photo"
DRAFT = "Instant draft"
THIS_RUN = "This run"
# Runs listed in the Compare menu, newest first; older ones are reached from History's menu.
MENU_RUNS = 12


def run_name(entry: HistoryEntry) -> str:
    return f"Run #{entry.number}"


class Comparison(QObject):
    """What the result view compares; A follows the model, B is chosen."""

    def __init__(
        self,
        result: ResultView,
        model: RunModel,
        current_draft: Callable[[], Draft | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.result = result
        self.view = result.view
        self.model = model
        self.current_draft = current_draft
        # What B is: None for the photo, a history entry, or the draft (its picture is kept: a draft
        # made for other inputs later is another picture).
        self.reference: HistoryEntry | Draft | None = None

        self.flip_action = QAction("Flip picture and comparison", self)
        self.flip_action.setShortcut("X")
        self.flip_action.setToolTip("Swap the picture on view and the one it is compared with (X)")
        self.flip_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.flip_action.triggered.connect(self.flip)
        self.photo_action = QAction("Compare with the photo", self)
        self.photo_action.setToolTip("Compare the picture on view with the photo (the split line)")
        self.photo_action.triggered.connect(self.compare_with_photo)

        result.compare_menu.aboutToShow.connect(self._fill_menu)
        model.viewing_changed.connect(lambda _entry: self.follow())
        model.draft_changed.connect(lambda _draft: self.follow())
        model.frame_changed.connect(self._on_frame)
        model.entry_added.connect(lambda _entry: self.follow())
        # A finished run's entry is added while the run is still ending: named again once it has.
        model.state_changed.connect(lambda _state: self.follow())
        model.entry_dropped.connect(self._on_entry_dropped)
        self.follow()

    def install(self, window: QWidget) -> None:
        """The flip key works anywhere in the window (a text field keeps its own X)."""
        window.addAction(self.flip_action)

    # -- A: what is on view ---------------------------------------------------
    def shown_name(self) -> str:
        model = self.model
        if model.viewing is not None:
            return run_name(model.viewing)
        if model.draft is not None:
            return DRAFT
        if model.is_running:
            return THIS_RUN
        if model.history:
            return run_name(model.history[-1])
        return "Painting"

    def follow(self) -> None:
        """The model changed what is on view: name it (and B, which may have become A itself)."""
        self.view.set_labels(self.shown_name(), self.reference_name())

    def _on_frame(self, frame: object) -> None:
        if frame is not None and self.view.labels[0] != THIS_RUN and self.model.viewing is None:
            self.follow()

    def _on_entry_dropped(self, entry: HistoryEntry) -> None:
        if self.reference is entry:
            self.compare_with_photo()

    # -- B: what it is compared with ------------------------------------------
    def reference_name(self) -> str:
        reference = self.reference
        if isinstance(reference, HistoryEntry):
            return run_name(reference)
        if isinstance(reference, Draft):
            return DRAFT
        return PHOTO

    def _set_reference(self, reference: HistoryEntry | Draft | None, image: QImage | None) -> None:
        self.reference = reference
        name = self.reference_name()
        self.view.set_reference(image, name)
        self.view.set_labels(self.shown_name(), name)
        self.result.set_compare_text(name)

    def compare_with_photo(self) -> None:
        self._set_reference(None, None)
        self.result.open_split()

    def compare_with_entry(self, entry: HistoryEntry) -> None:
        self._set_reference(entry, entry.image)
        self.result.open_split()

    def compare_with_draft(self) -> None:
        draft = self.current_draft()
        if draft is None:
            return
        self._set_reference(draft, draft.image)
        self.result.open_split()

    def flip(self) -> None:
        self.view.flip()

    def _fill_menu(self) -> None:
        menu = self.result.compare_menu
        menu.clear()
        photo = menu.addAction(PHOTO, self.compare_with_photo)
        photo.setCheckable(True)
        photo.setChecked(self.reference is None)
        draft = menu.addAction(DRAFT, self.compare_with_draft)
        draft.setCheckable(True)
        draft.setChecked(isinstance(self.reference, Draft))
        draft.setEnabled(self.current_draft() is not None)
        runs = list(reversed(self.model.history))[:MENU_RUNS]
        if runs:
            menu.addSeparator()
        for entry in runs:
            action = menu.addAction(run_name(entry), lambda e=entry: self.compare_with_entry(e))
            action.setCheckable(True)
            action.setChecked(self.reference is entry)
        menu.addSeparator()
        menu.addAction(self.flip_action)
