"""Saving pictures from the window: the Save dialog, then the one writer of results (engine.results).

Everything that can be refused (an input as the target, an existing file, a size the format
cannot hold) is refused by ``check_output`` before anything is written, with the picture still
safe in the history; ``save_result`` then writes it, or a recovery file when it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.encode import OUTPUT_FORMATS
from engine.errors import InputError, OutputExistsError
from engine.records import Finished
from engine.results import OutputSpec, SaveError, check_output, job_inputs, save_result
from ui.imports import ImportedImage
from ui.message_bar import Level
from ui.model import HistoryEntry, RunModel
from ui.prompts import EXPORT_FORMATS, Prompter
from ui.qtutil import describe_exception, guarded
from ui.settings import Settings

# show_message(text, level) and show_status(text, milliseconds), as the window shows them.
Say = Callable[[str, Level], None]
Status = Callable[[str, int], None]


class Exporter:
    """Export, Save preview and a history entry's Export; each returns the path written, or None."""

    def __init__(
        self,
        model: RunModel,
        prompter: Prompter,
        settings: Settings,
        cache_dir: Path,
        shown_photo: Callable[[], ImportedImage | None],
        say: Say,
        status: Status,
        adjust: Callable[[Finished], Finished] | None = None,
    ) -> None:
        self.model = model
        self.prompter = prompter
        self.settings = settings
        self.cache_dir = cache_dir
        self.shown_photo = shown_photo
        self.say = say
        self.status = status
        # The picture as on view (the result's Photo colours slider), with a recipe that says so.
        self.adjust = adjust or (lambda finished: finished)

    def report_exception(self, error: BaseException) -> None:
        """Where ``guarded`` sends what went wrong."""
        self.say(describe_exception(error), Level.ERROR)

    @guarded
    def export_result(self) -> Path | None:
        draft = self.model.export_draft()
        if draft is not None:
            # The draft on view: saved with its own recipe (the instant method's).
            return self.export(draft, "draft")
        entry = self.model.export_entry()
        if entry is None:
            self.say("Nothing to export yet: run first, or pick a run in History.", Level.INFO)
            return None
        return self.export(entry.finished, f"painterly-{entry.number}")

    @guarded
    def save_preview(self) -> Path | None:
        finished = self.model.current_picture()
        if finished is None:
            self.say("Nothing to save yet: the preview appears once a run starts.", Level.INFO)
            return None
        return self.export(finished, f"preview-iteration-{finished.iterations}", "Save the preview")

    @guarded
    def export_entry(self, entry: HistoryEntry) -> Path | None:
        return self.export(entry.finished, f"painterly-{entry.number}")

    def export(self, finished: Finished, stem: str, title: str = "Export the painting") -> Path | None:
        chosen = self.ask_save_path(title, self.suggested_name(finished, stem))
        if chosen is None:
            return None
        path, bit_depth, confirmed = chosen
        return self.write(path, self.adjust(finished), bit_depth, overwrite=confirmed)

    def suggested_name(self, finished: Finished, stem: str) -> Path:
        content = finished.job.content
        base = content.stem
        if content.is_relative_to(self.cache_dir):
            # Pasted or dropped data lives under a hash name; name the result after what the user saw.
            shown = self.shown_photo()
            base = shown.name if shown is not None and shown.path == content else "painting"
            base = "-".join(Path(base).stem.lower().split()) or "painting"
        folder = self.settings.last_folder("export") or (
            Path.home() if content.is_relative_to(self.cache_dir) else content.parent
        )
        return folder / f"{base}-{stem}.png"

    def ask_save_path(self, title: str, suggested: Path) -> tuple[Path, int, bool] | None:
        """(path, bit depth, replacing-confirmed) from the Save dialog, or None if cancelled."""
        filters = [text for text, _, _ in EXPORT_FORMATS]
        path, chosen = self.prompter.save_file(title, suggested, filters, filters[0])
        if path is None:
            return None
        extension, bit_depth = ".png", 8
        for text, ext, depth in EXPORT_FORMATS:
            if text == chosen:
                extension, bit_depth = ext, depth
        confirmed = path.exists()  # the dialog asked before returning an existing name
        if path.suffix.lower() not in OUTPUT_FORMATS:
            path = path.with_name(path.name + extension)
            if path.exists():
                # A name we completed was not seen by the dialog: ask here instead.
                confirmed = self.prompter.ask(
                    "Replace file?", f"{path.name} already exists. Replace it?", "Replace", "Cancel"
                )
                if not confirmed:
                    return None
        if bit_depth == 16 and path.suffix.lower() not in (".png", ".tif", ".tiff"):
            bit_depth = 8
        self.settings.set_last_folder("export", path.parent)
        return path, bit_depth, confirmed

    def write(self, path: Path, finished: Finished, bit_depth: int, overwrite: bool) -> Path | None:
        spec = OutputSpec(path, bit_depth=bit_depth, dpi=finished.job.params.dpi, overwrite=overwrite)
        inputs = job_inputs(finished.job)
        try:
            # Everything that can be refused is refused here, with the picture still safe in History.
            check_output(spec, inputs=inputs, size=(finished.image.shape[1], finished.image.shape[0]))
        except OutputExistsError as error:
            self.say(f"Not saved: {error}", Level.WARNING)
            return None
        except InputError as error:
            self.say(f"Not saved: {error}", Level.ERROR)
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            outcome = save_result(finished, spec, inputs=inputs)
        except SaveError as error:
            self.say(f"Not saved: {error}. The picture is still in History.", Level.ERROR)
            return None
        finally:
            QApplication.restoreOverrideCursor()
        saved = outcome.path
        if outcome.recovered:
            self.say(
                f"Could not save {path.name}: {outcome.problem}. The picture was saved to {saved} instead.",
                Level.WARNING,
            )
            return saved
        self.status(f"Saved {saved}", 8000)
        self.say(f"Saved {saved.name} with its recipe in {saved.parent}", Level.INFO)
        return saved
