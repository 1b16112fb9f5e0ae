"""Saving pictures from the window: the Save dialog, then the one writer of results (engine.results).

Everything that can be refused (an input as the target, an existing file, a size the format
cannot hold) is refused by ``check_output`` before anything is written, with the picture still
safe in the history; ``save_result`` then writes it, or a recovery file when it cannot.

The Save dialog carries the export's own choices (``ExportOptions``): the JPEG and WebP quality,
and what the file tells about the inputs (engine.recipe.Embed: file names only, by default; full
paths; or no recipe), with a line saying exactly what is embedded. After a save the message offers
"Show in folder".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.encode import OUTPUT_FORMATS
from engine.errors import InputError, OutputExistsError
from engine.recipe import Embed
from engine.records import Finished
from engine.results import OutputSpec, SaveError, check_output, job_inputs, save_result
from ui.imports import ImportedImage
from ui.message_bar import Level
from ui.model import HistoryEntry, RunModel
from ui.prompts import EXPORT_FORMATS, Prompter
from ui.qtutil import describe_exception, guarded
from ui.settings import Settings


class Say(Protocol):
    """show_message(text, level, action) as the window shows it."""

    def __call__(
        self, text: str, level: Level, action: tuple[str, Callable[[], None]] | None = None
    ) -> None: ...


# show_status(text, milliseconds), as the window's status bar shows it.
Status = Callable[[str, int], None]

# The privacy choice in words: the combo's text, and what the file then carries.
EMBED_CHOICES: tuple[tuple[Embed, str, str], ...] = (
    (
        Embed.NAMES,
        "File names only",
        "Embedded: the recipe (every setting, the seed, the preset, the network weights) and each "
        "input's file name and SHA-256 fingerprint, but no folders: the file does not tell where your "
        "pictures are kept or your user name. Reopening the recipe finds inputs placed beside it.",
    ),
    (
        Embed.PATHS,
        "Full paths",
        "Embedded: the recipe and each input's full path (such as /home/you/Pictures/photo.jpg) with "
        "its SHA-256 fingerprint, so reopening the recipe on this computer finds the inputs. The paths "
        "can reveal your user name and how your folders are organised.",
    ),
    (
        Embed.NONE,
        "No recipe",
        "Embedded: no recipe at all, so the file cannot be reopened with its settings. Only the sRGB "
        "colour profile and the print resolution are written.",
    ),
)
ALWAYS_EMBEDDED = "Every format also carries the sRGB colour profile and, when set, the print resolution."


def embedded_text(embed: Embed) -> str:
    for choice, _, text in EMBED_CHOICES:
        if choice is embed:
            return text
    raise ValueError(embed)


def show_in_folder(path: Path) -> bool:
    """Open the folder holding ``path`` in the file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


class ExportOptions(QWidget):
    """The export's choices under the Save dialog's file list; they are remembered in the settings."""

    def __init__(self, quality: int, embed: Embed, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ExportOptions")
        box = QGroupBox("Export")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        quality_tip = (
            "JPEG and WebP only: higher keeps more detail in a larger file; 100 makes WebP lossless. "
            "PNG and TIFF are always lossless."
        )
        self.quality_slider = QSlider(Qt.Orientation.Horizontal)
        self.quality_slider.setRange(1, 100)
        self.quality_slider.setToolTip(quality_tip)
        self.quality = QSpinBox()
        self.quality.setObjectName("ExportQuality")
        self.quality.setRange(1, 100)
        self.quality.setToolTip(quality_tip)
        self.quality_slider.valueChanged.connect(self.quality.setValue)
        self.quality.valueChanged.connect(self.quality_slider.setValue)
        self.quality.setValue(quality)
        self.quality_label = QLabel("JPEG/WebP quality")
        self.quality_label.setToolTip(quality_tip)
        row = QHBoxLayout()
        row.addWidget(self.quality_slider, 1)
        row.addWidget(self.quality)
        form.addRow(self.quality_label, row)

        self.embed = QComboBox()
        self.embed.setObjectName("ExportEmbed")
        for choice, text, detail in EMBED_CHOICES:
            self.embed.addItem(text, choice.value)
            self.embed.setItemData(self.embed.count() - 1, detail, Qt.ItemDataRole.ToolTipRole)
        self.embed.setToolTip("What the file tells about the photo and paintings it was made from")
        self.embed.setCurrentIndex(max(0, self.embed.findData(Embed(embed).value)))
        label = QLabel("Inputs in the recipe")
        label.setToolTip(self.embed.toolTip())
        form.addRow(label, self.embed)
        self.embedded = QLabel("")
        self.embedded.setObjectName("ExportEmbedded")
        self.embedded.setTextFormat(Qt.TextFormat.PlainText)
        self.embedded.setWordWrap(True)
        self.embedded.setToolTip(ALWAYS_EMBEDDED)
        form.addRow(self.embedded)
        self.embed.currentIndexChanged.connect(lambda _index: self._describe())
        self._describe()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(box)

    @property
    def chosen_quality(self) -> int:
        return self.quality.value()

    @property
    def chosen_embed(self) -> Embed:
        return Embed(self.embed.currentData())

    def _describe(self) -> None:
        self.embedded.setText(f"{embedded_text(self.chosen_embed)} {ALWAYS_EMBEDDED}")

    def set_filter(self, text: str) -> None:
        """The Save dialog's chosen format: quality matters only to JPEG and WebP."""
        lossy = "JPEG" in text or "WebP" in text
        for widget in (self.quality, self.quality_slider, self.quality_label):
            widget.setEnabled(lossy)


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
        self.show_folder: Callable[[Path], object] = show_in_folder

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
        return self.export_entry(entry)

    @guarded
    def save_preview(self) -> Path | None:
        finished = self.model.current_picture()
        if finished is None:
            self.say("Nothing to save yet: the preview appears once a run starts.", Level.INFO)
            return None
        return self.export(finished, f"preview-iteration-{finished.iterations}", "Save the preview")

    @guarded
    def export_entry(self, entry: HistoryEntry) -> Path | None:
        saved = self.export(entry.finished, f"painterly-{entry.number}")
        if saved is not None:
            self.model.mark_exported(entry)  # quitting no longer asks about it
        return saved

    def export(self, finished: Finished, stem: str, title: str = "Export the painting") -> Path | None:
        chosen = self.ask_save_path(title, self.suggested_name(finished, stem))
        if chosen is None:
            return None
        path, bit_depth, confirmed = chosen
        return self.write(path, self.adjust(finished), bit_depth, overwrite=confirmed)

    def options(self) -> ExportOptions:
        """The dialog's export choices, as last chosen."""
        return ExportOptions(self.settings.export_quality(), self.settings.export_embed())

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
        options = self.options()
        path, chosen = self.prompter.save_file(title, suggested, filters, filters[0], options)
        if path is None:
            return None
        self.settings.set_export_quality(options.chosen_quality)
        self.settings.set_export_embed(options.chosen_embed)
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
        spec = OutputSpec(
            path,
            bit_depth=bit_depth,
            dpi=finished.job.params.dpi,
            quality=self.settings.export_quality(),
            overwrite=overwrite,
            embed=self.settings.export_embed(),
        )
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
        what = {
            Embed.NAMES: "with its recipe (input file names only)",
            Embed.PATHS: "with its recipe (full paths of the inputs)",
            Embed.NONE: "without a recipe",
        }[spec.embed]
        self.say(
            f"Saved {saved.name} {what} in {saved.parent}",
            Level.INFO,
            ("Show in folder", lambda: self.show_folder(saved)),
        )
        return saved
