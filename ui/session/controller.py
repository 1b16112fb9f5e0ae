"""The session that lasts: History, the photo, the styles and the settings kept between starts.

``Session`` binds the run model to the kept session (``SessionStore``): each new History entry is
written in the background, a deleted one goes from disk, and the photo, styles, parameters and
entries are described in the manifest a moment after they change. At start ``restore`` puts it all
back. Quitting (Ctrl+Q or the window's close button) with results never exported, or during a run,
asks: Keep for next time, Discard or Cancel. The disk the session may use is a setting
(Edit > Preferences); beyond it the oldest entries go, exported ones first, with a message naming
any that were never exported. A session travels as one ``.painterly`` file (``ui.session.archive``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu

from engine.errors import InputError
from engine.files import describe_os_error
from engine.imageio import load_image
from engine.recipe import Embed, build_recipe, without_folders
from engine.results import OutputSpec, write_result
from ui.imports import ImportedImage, error_text, shown
from ui.message_bar import Level
from ui.model import HISTORY_LIMIT, HistoryEntry
from ui.qtutil import qimage_png_bytes, rgb_to_qimage, shrink
from ui.session.archive import FILTER, SUFFIX, read_session, write_session
from ui.session.entries import StoredEntry
from ui.session.manifest import INPUTS, EntryRecord, Manifest, StoredInput
from ui.session.preferences import PreferencesDialog
from ui.session.store import (
    INPUT_SUFFIXES,
    THUMBNAIL_EDGE,
    InputFile,
    SessionStore,
    input_in,
    recipe_hashes,
)

if TYPE_CHECKING:
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)

# The manifest follows the inputs and settings after this pause: one write per burst of changes.
MANIFEST_DELAY_MS = 500
KEEP, DISCARD, CANCEL = "Keep for next time", "Discard", "Cancel"
QUIT_UNKEPT = "Quit without keeping"


class Decision(Enum):
    KEEP = "keep"
    DISCARD = "discard"


def _megabytes(size: int) -> str:
    return f"{size / (1 << 30):.1f} GB" if size >= 1 << 30 else f"{size / (1 << 20):.0f} MB"


def _runs(entries: list[HistoryEntry]) -> str:
    numbers = [f"#{entry.number}" for entry in entries]
    return numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]


class Session(QObject):
    """The window's kept session; ``window`` gives it the model, the panes and the History strip."""

    stored = Signal(int, int)  # an entry's files are written: (number, bytes the session uses)
    failed = Signal(str)  # a write failed (a full disk): said once

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.model = window.model
        self.store = SessionStore(window.locations.data_dir / "session", persistent=window.autosave_enabled)
        self.store.on_stored = self.stored.emit
        self.store.on_failed = self.failed.emit
        self.records: dict[int, EntryRecord] = {}
        self.decision: Decision | None = None
        self.closed = False
        self._failure_said = False
        self._removing = False
        self._opened_folders: list[Path] = []  # session files opened without a data folder
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(MANIFEST_DELAY_MS)
        self._timer.timeout.connect(self.write_manifest)
        self.model.entry_added.connect(self._on_added)
        self.model.entry_dropped.connect(self._on_dropped)
        self.model.entry_changed.connect(self._on_changed)
        self.model.params_changed.connect(lambda _params: self.schedule())
        self.model.inputs_changed.connect(lambda _inputs: self.schedule())
        self.stored.connect(self._on_stored)
        self.failed.connect(self._on_failed)
        window.history.deleteRequested.connect(self.delete_entry)

    @property
    def persistent(self) -> bool:
        return self.store.persistent

    # -- following the model --------------------------------------------------------------------
    def _on_added(self, entry: HistoryEntry) -> None:
        if self.closed:
            return
        if isinstance(entry, StoredEntry):
            self.records[entry.number] = entry.record
            return
        # The full recipe (inputs by path) stays in the manifest, to restore and continue from;
        # the picture's own file carries names only.
        recipe = build_recipe(entry.finished, embed=Embed.PATHS)
        record = EntryRecord(entry.number, entry.created, recipe, entry.label, entry.exported)
        self.records[entry.number] = record
        if self.persistent:
            self.store.store_entry(record, entry.finished, entry.image)
            self.schedule()

    def _on_dropped(self, entry: HistoryEntry) -> None:
        record = self.records.pop(entry.number, None)
        if record is not None and not self.closed:
            self.store.remove_entry(record)
            self.schedule()
        if not self._removing and not entry.exported and not self.closed:
            # The model's own limit on entries held in memory (ui.model.HISTORY_LIMIT), not a choice
            # made here: said, so a picture never goes unnoticed.
            self.window.show_message(
                f"History holds at most {HISTORY_LIMIT} runs: run #{entry.number}, never exported, was "
                "let go to make room.",
                Level.WARNING,
            )

    def _remove(self, entry: HistoryEntry) -> None:
        """Take an entry out of History on purpose (Delete, the disk limit, opening a session)."""
        self._removing = True
        try:
            self.model.remove_entry(entry)
        finally:
            self._removing = False

    def _on_changed(self, entry: HistoryEntry) -> None:
        record = self.records.get(entry.number)
        if record is not None:
            record.exported = entry.exported
            self.schedule()

    def schedule(self) -> None:
        if self.persistent and not self.closed:
            self._timer.start()

    def write_manifest(self) -> None:
        """Describe the session as it is now (the writer copies new inputs first)."""
        self._timer.stop()
        if not self.persistent or self.closed:
            return
        inputs = self.model.inputs
        photo = self._input_file(inputs.content) if inputs.content is not None else None
        styles = [self._input_file(image, blend) for image, blend in inputs.styles]
        params = self.window.params_panel.last_valid.to_dict()
        entries = [self.records[entry.number] for entry in self.model.history if entry.number in self.records]
        self.store.write_manifest(photo, styles, params, entries)

    def _input_file(self, image: ImportedImage, blend: float = 100.0) -> InputFile:
        return InputFile(image.path, image.name, float(blend), own_file=not self._is_copy(image.path))

    def _is_copy(self, path: Path) -> bool:
        """Painterly's copy of pasted or dragged data, or of an input kept by a session."""
        importer = self.window.importer
        folders = [importer.cache_dir, self.store.folder, *self._opened_folders]
        if importer._fallback is not None:
            folders.append(importer._fallback)
        return any(path.is_relative_to(folder) for folder in folders)

    # -- the disk it may use -----------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self.window.settings.session_limit_mb() << 20

    def _on_stored(self, number: int, usage: int) -> None:
        if usage > self.limit:
            self.trim(usage)

    def trim(self, usage: int | None = None) -> list[HistoryEntry]:
        """Let the oldest entries go until the session fits its disk: exported ones first (their
        files are safe elsewhere), never the newest. Returns the entries let go."""
        usage = self.store.usage() if usage is None else usage
        limit = self.limit
        history = list(self.model.history)
        if usage <= limit or len(history) < 2:
            return []
        older = history[:-1]
        order = [e for e in older if e.exported] + [e for e in older if not e.exported]
        dropped: list[HistoryEntry] = []
        for entry in order:
            if usage <= limit:
                break
            record = self.records.get(entry.number)
            for member in (record.image, record.thumbnail) if record else ():
                try:
                    usage -= self.store.path(member).stat().st_size
                except OSError:
                    pass
            self._remove(entry)
            dropped.append(entry)
        lost = [entry for entry in dropped if not entry.exported]
        if lost:
            self.window.show_message(
                f"History keeps within {_megabytes(limit)} of disk (Edit > Preferences): runs "
                f"{_runs(lost)}, never exported, were let go to make room.",
                Level.WARNING,
            )
        elif dropped:
            self.window.statusBar().showMessage(
                f"History keeps within {_megabytes(limit)} of disk: exported runs {_runs(dropped)} left it",
                10_000,
            )
        return dropped

    def _on_failed(self, problem: str) -> None:
        if not self._failure_said:
            self._failure_said = True
            self.window.show_message(
                f"History could not be kept on disk ({problem}). Everything stays in the window until "
                "Painterly closes; export what you want to keep.",
                Level.WARNING,
            )

    # -- deleting --------------------------------------------------------------------------------
    def delete_entry(self, entry: HistoryEntry) -> bool:
        """History's Delete: a run never exported is asked about first."""
        if entry not in self.model.history:
            return False
        if not entry.exported and not self.window.prompter.ask(
            f"Delete run #{entry.number}?",
            f"Run #{entry.number} was never exported: its picture will be gone for good.",
            "Delete",
            "Cancel",
        ):
            return False
        self._remove(entry)
        if not self.model.history and self.model.viewing is None:
            self.window.result.view.set_result(None)
        self.window.statusBar().showMessage(f"Deleted run #{entry.number} from History", 5000)
        return True

    # -- quitting ------------------------------------------------------------------------------
    def unkept(self) -> list[HistoryEntry]:
        """Entries of this session never exported (those kept from an earlier session were decided on)."""
        return [e for e in self.model.history if not e.exported and not getattr(e, "kept", False)]

    def confirm_close(self) -> bool:
        """Ask before quitting lets anything go; False: the window stays open (Cancel)."""
        if self.decision is not None:
            return True
        running = self.model.is_running
        unkept = self.unkept()
        if not running and not unkept:
            self.decision = Decision.KEEP
            return True
        results = f"{len(unkept)} result{'s' if len(unkept) != 1 else ''} never exported"
        if running:
            what = "A run is in progress" + (f", and History holds {results}." if unkept else ".")
        else:
            what = f"History holds {results}."
        prompter = self.window.prompter
        if not self.persistent:
            choice = prompter.choose(
                "Quit and lose History?",
                f"{what}\n\nHistory cannot be kept for next time here (the data folder cannot be "
                "written), so quitting lets these pictures go. Cancel to export what you want to keep.",
                [QUIT_UNKEPT, CANCEL],
                cancel=1,
            )
            if choice != 0:
                return False
            self.decision = Decision.DISCARD
            return True
        stops = "The run stops and its picture so far is kept; " if running else ""
        choice = prompter.choose(
            "Keep this session for next time?",
            f"{what}\n\n"
            f"Keep for next time: {stops}Painterly opens next time with History, the photo, the styles "
            "and the settings as they are now.\n\n"
            f"Discard: {'the run stops; ' if running else ''}the results never exported are let go and "
            "Painterly starts empty next time. Files you exported are not touched.",
            [KEEP, DISCARD, CANCEL],
            cancel=2,
        )
        if choice == 0:
            self.decision = Decision.KEEP
        elif choice == 1:
            self.decision = Decision.DISCARD
        else:
            return False
        return True

    def close(self) -> None:
        """The window closes: keep the session as decided (or discard it), and finish writing."""
        if self.closed:
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            if self.decision is Decision.DISCARD:
                self.closed = True
                self._timer.stop()
                self.store.discard()
            else:
                self.write_manifest()
                self.closed = True
            if not self.store.flush(timeout=120):
                log.error("the session was still being written after two minutes")
        finally:
            QApplication.restoreOverrideCursor()

    def shutdown(self) -> None:
        """Stop the writer thread (after what it was asked to write) and remove opened copies."""
        self.store.close()
        for folder in self._opened_folders:
            shutil.rmtree(folder, ignore_errors=True)

    # -- restoring -------------------------------------------------------------------------------
    def restore(self) -> bool:
        """Put back what the kept session holds; True when there was one."""
        manifest = self.store.load()
        if manifest is None:
            if self.store.problem:
                self.window.show_message(
                    f"The last session could not be restored: {self.store.problem}", Level.WARNING
                )
            return False
        self._apply(manifest, self.store.folder)
        return True

    def _apply(self, manifest: Manifest, folder: Path, source: str = "") -> None:
        """Put a manifest's settings, inputs and entries in the window. ``source`` names an opened
        session file: its photo and styles replace the window's, and it is never trusted to name
        a file outside itself (a file Painterly writes records no original paths)."""
        window = self.window
        problems: list[str] = []
        if manifest.params is not None:
            window.params_panel.set_params(manifest.params)
        trusted = not source
        photo = (
            self._import(manifest.photo, folder, problems, trusted) if manifest.photo is not None else None
        )
        if photo is not None or (source and manifest.photo is None):
            window.content_pane.set_image(photo)
        styles = [
            (image, item.blend)
            for item in manifest.styles
            if (image := self._import(item, folder, problems, trusted))
        ]
        if styles or source:
            window.style_list.set_styles(styles)
        entries: list[HistoryEntry] = []
        for record in manifest.entries:
            picture = folder / record.image
            if not picture.is_file():
                problems.append(f"run #{record.number}: its picture is missing")
                continue
            try:
                entry = StoredEntry(
                    record, picture, self._thumbnail(folder / record.thumbnail), self._finder(folder)
                )
            except InputError as error:
                problems.append(f"run #{record.number}: {error}")
                continue
            entries.append(entry)
        self.model.adopt(entries)
        window.edits.forget()
        parts = [
            "the photo" if manifest.photo is not None and window.content_pane.image is not None else "",
            f"{len(styles)} style{'s' if len(styles) != 1 else ''}" if styles else "",
            f"{len(entries)} result{'s' if len(entries) != 1 else ''} in History" if entries else "",
        ]
        restored = ", ".join(part for part in parts if part) or "the settings"
        where = f"from {shown(source)}" if source else "from your last session"
        if problems:
            window.show_message(f"Restored {restored} {where}; but " + "; ".join(problems), Level.WARNING)
        else:
            window.statusBar().showMessage(f"Restored {restored} {where}", 10_000)

    def _finder(self, folder: Path) -> Any:
        return lambda sha256: input_in(folder, sha256)

    def _import(
        self, item: StoredInput, folder: Path, problems: list[str], trusted: bool = True
    ) -> ImportedImage | None:
        """The input from where it was read, if it is still there, else from the session's copy."""
        importer = self.window.importer
        if item.original and trusted:
            try:
                if Path(item.original).is_file():
                    return importer.from_path(item.original)
            except (InputError, OSError, ValueError):
                pass  # changed into something unreadable: the copy is what was used
        copy = folder / item.file
        try:
            image = importer.from_path(copy)
        except (InputError, OSError) as error:
            problems.append(error_text(error, item.name))
            return None
        return dataclasses.replace(image, name=item.name)

    @staticmethod
    def _thumbnail(path: Path) -> Any:
        try:
            return rgb_to_qimage(load_image(path).rgb) if path.is_file() else None
        except InputError:
            return None

    # -- a session as one file -------------------------------------------------------------------
    def save_file(self) -> Path | None:
        """File > Save session as…: the inputs, History with recipes (names only) and a manifest."""
        window = self.window
        folder = window.settings.last_folder("session") or Path.home()
        suggested = folder / f"painterly-{time.strftime('%Y-%m-%d')}{SUFFIX}"
        path, _ = window.prompter.save_file(
            "Save the session as a file", suggested, [FILTER.split(";;")[0]], ""
        )
        if path is None:
            return None
        confirmed = path.exists()
        if path.suffix.lower() != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
            if path.exists():
                confirmed = window.prompter.ask(
                    "Replace file?", f"{path.name} already exists. Replace it?", "Replace", "Cancel"
                )
                if not confirmed:
                    return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.store.flush()
            with tempfile.TemporaryDirectory(prefix="painterly-session-") as scratch:
                manifest_json, members = self._archive_contents(Path(scratch))
                write_session(path, manifest_json, members, overwrite=confirmed)
        except (InputError, OSError) as error:
            text = describe_os_error(error) if isinstance(error, OSError) else str(error)
            window.show_message(f"The session was not saved: {text}", Level.ERROR)
            return None
        finally:
            QApplication.restoreOverrideCursor()
        window.settings.set_last_folder("session", path.parent)
        size = _megabytes(path.stat().st_size)
        window.show_message(
            f"Saved the session as {path.name} ({size}) in {path.parent}: open it with File > Open session.",
            Level.INFO,
            ("Show in folder", lambda: window.exporter.show_folder(path)),
        )
        return path

    def _archive_contents(self, scratch: Path) -> tuple[str, dict[str, Path]]:
        import json

        members: dict[str, Path] = {}
        hashes: dict[Path, str] = {}

        def add_input(path: Path, sha: str = "") -> str:
            """The input's name in the archive (by its fingerprint), added once."""
            if not sha:
                if path not in hashes:
                    with path.open("rb") as stream:
                        hashes[path] = hashlib.file_digest(stream, "sha256").hexdigest()
                sha = hashes[path]
            for name in members:
                if name.startswith(f"{INPUTS}/{sha}."):
                    return name
            suffix = path.suffix.lower() if path.suffix.lower() in INPUT_SUFFIXES else ".png"
            members[f"{INPUTS}/{sha}{suffix}"] = path
            return f"{INPUTS}/{sha}{suffix}"

        inputs = self.model.inputs
        photo = None
        if inputs.content is not None:
            file = add_input(inputs.content.path)
            photo = StoredInput(inputs.content.name, file, file[len(INPUTS) + 1 :].split(".")[0])
        styles = []
        for image, blend in inputs.styles:
            file = add_input(image.path)
            styles.append(
                StoredInput(image.name, file, file[len(INPUTS) + 1 :].split(".")[0], blend=float(blend))
            )
        records: list[EntryRecord] = []
        for entry in self.model.history:
            record = self.records.get(entry.number) or EntryRecord(
                entry.number, entry.created, build_recipe(entry.finished, embed=Embed.PATHS), entry.label
            )
            record = EntryRecord(record.number, record.created, record.recipe, record.label, entry.exported)
            picture = self.store.path(record.image)
            if not (self.persistent and picture.is_file()):
                picture = scratch / record.image
                picture.parent.mkdir(parents=True, exist_ok=True)
                write_result(entry.finished, OutputSpec(picture, overwrite=True, embed=Embed.NAMES))
            members[record.image] = picture
            thumbnail = self.store.path(record.thumbnail)
            if not (self.persistent and thumbnail.is_file()):
                thumbnail = scratch / record.thumbnail
                thumbnail.parent.mkdir(parents=True, exist_ok=True)
                thumbnail.write_bytes(qimage_png_bytes(shrink(entry.thumbnail_source, THUMBNAIL_EDGE)))
            members[record.thumbnail] = thumbnail
            # The inputs each result was made from travel with it (found by their fingerprints).
            for sha in recipe_hashes(record.recipe):
                kept = self.store.input_file(sha) if self.persistent else None
                if kept is None:
                    kept = self._job_input(entry, sha)
                if kept is not None:
                    add_input(kept, sha)
            records.append(record)
        params = self.window.params_panel.last_valid
        manifest = Manifest(photo, styles, params, records)
        # A file for another computer: no folder of this one, anywhere in it.
        data = manifest.to_json(with_originals=False, recipe=lambda record: without_folders(record.recipe))
        # ASCII: a file name that is not UTF-8 (kept as escapes) survives the round trip exactly.
        return json.dumps(data, ensure_ascii=True, default=str), members

    @staticmethod
    def _job_input(entry: HistoryEntry, sha: str) -> Path | None:
        job = entry.job if isinstance(entry, StoredEntry) else entry.finished.job
        for path in (job.content, *job.styles):
            try:
                with path.open("rb") as stream:
                    if hashlib.file_digest(stream, "sha256").hexdigest() == sha:
                        return path
            except OSError:
                continue
        return None

    def open_file(self, path: Path | None = None) -> bool:
        """File > Open session…: replace this session with the one in a .painterly file."""
        window = self.window
        if self.model.is_running:
            window.show_message("Stop the run before opening a session.", Level.INFO)
            return False
        if path is None:
            path = window.prompter.open_file(
                "Open a Painterly session", window.settings.last_folder("session"), FILTER
            )
            if path is None:
                return False
        unkept = self.unkept()
        if unkept and not window.prompter.ask(
            "Open the session?",
            f"Opening {shown(path.name)} replaces History: runs {_runs(unkept)} were never exported and "
            "will be gone.",
            "Open",
            "Cancel",
        ):
            return False
        base = self.store.folder.parent if self.persistent else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".painterly-opening-", dir=base))
        try:
            manifest = read_session(path, staging)
        except InputError as error:
            shutil.rmtree(staging, ignore_errors=True)
            window.show_message(f"Session not opened: {error_text(error, path.name)}", Level.ERROR)
            return False
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            window.show_message(
                f"Session not opened: {shown(path.name)}: {describe_os_error(error)}", Level.ERROR
            )
            return False
        for entry in list(self.model.history):
            self._remove(entry)
        self.store.flush()
        if self.persistent:
            shutil.rmtree(self.store.folder, ignore_errors=True)
            staging.rename(self.store.folder)
            folder = self.store.folder
        else:
            self._opened_folders.append(staging)
            folder = staging
        window.settings.set_last_folder("session", path)
        self._apply(manifest, folder, path.name)
        self.write_manifest()
        return True

    # -- menus -----------------------------------------------------------------------------------
    def install_actions(self, edit_menu: QMenu, quit_action: QAction) -> None:
        """Open session… and Save session as… in the File menu (above Quit), Preferences… in Edit."""
        window = self.window
        self.open_action = QAction("Open session…", window)
        self.open_action.setToolTip("Replace this session with one saved as a .painterly file")
        self.open_action.setStatusTip(self.open_action.toolTip())
        self.open_action.triggered.connect(lambda: self.open_file())
        self.save_action = QAction("Save session as…", window)
        self.save_action.setShortcut(QKeySequence("Ctrl+Alt+S"))
        self.save_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.save_action.setToolTip(
            "Save the photo, the styles, the settings and History (every result with its recipe) as "
            "one .painterly file to move to another computer (Ctrl+Alt+S)"
        )
        self.save_action.setStatusTip(self.save_action.toolTip())
        self.save_action.triggered.connect(lambda: self.save_file())
        window.addAction(self.save_action)
        for action in window.menuBar().actions():
            menu = action.menu()
            if isinstance(menu, QMenu) and quit_action in menu.actions():
                menu.insertAction(quit_action, self.open_action)
                menu.insertAction(quit_action, self.save_action)
                menu.insertSeparator(quit_action)
                break
        self.preferences_action = QAction("Preferences…", window)
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.preferences_action.setToolTip("How much disk History may use")
        self.preferences_action.setStatusTip(self.preferences_action.toolTip())
        self.preferences_action.triggered.connect(lambda: self.show_preferences())
        edit_menu.addSeparator()
        edit_menu.addAction(self.preferences_action)

    def show_preferences(self) -> PreferencesDialog:
        usage = self.store.usage() if self.persistent else 0
        dialog = PreferencesDialog(
            self.window.settings, usage, str(self.store.folder), self.persistent, self.window
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.trim())
        dialog.open()
        return dialog
