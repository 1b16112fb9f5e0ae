"""The studio's state without its widgets: what is being edited, the run, its records and the history.

``RunModel`` is a QObject with no widgets (after krita-ai-diffusion's ``model/``): each value is an
observed property that emits ``<name>_changed(value)`` when it changes, and the window's widgets
bind to those signals.  The worker's records arrive here untouched (``receive``): Progress records
move the progress and the picture on, the Finished record goes into the history.  It can be
driven without a window or a thread: set ``job``, then feed it records.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from engine.params import StyleJob, StyleParams
from engine.records import Finished, Progress, Record, StopReason
from engine.results import snapshot
from engine.text import printable
from ui.draft import Draft
from ui.imports import ImportedImage
from ui.qtutil import format_duration
from ui.worker import Pictures, Snapshotter, StyleWorker, StylizeFn, Throttle, WeightsFactory

log = logging.getLogger(__name__)

T = TypeVar("T")

# Each entry holds its full-size float image; beyond this many the oldest are let go.
HISTORY_LIMIT = 40

REASON_TEXT = {
    StopReason.COMPLETED: "finished",
    StopReason.STOPPED: "stopped",
    StopReason.TIME_LIMIT: "time limit",
    StopReason.NUMERICAL_ERROR: "numerical error",
    StopReason.OUT_OF_MEMORY: "out of memory",
}


class RunState(Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop; the engine ends within an iteration


@dataclass(frozen=True)
class Frame:
    """The newest picture of a run: the record that brought it, and the picture for display."""

    record: Progress
    image: QImage


@dataclass(eq=False)
class HistoryEntry:
    number: int
    finished: Finished
    image: QImage  # the result for display (full size)
    created: float = field(default_factory=time.time)
    label: str = ""  # e.g. "recovered"
    # Saved to a file by Export (quitting asks before results that never were are let go).
    exported: bool = False

    @property
    def thumbnail_source(self) -> QImage:
        """The picture History's thumbnail is made from (a stored entry has a small one on disk)."""
        return self.image

    @property
    def title(self) -> str:
        reason = self.label or REASON_TEXT.get(self.finished.reason, str(self.finished.reason))
        return f"#{self.number} · {self.finished.iterations} it · {reason}"

    @property
    def details(self) -> str:
        f = self.finished
        params = f.job.params
        # File names and messages come from outside (a recipe, an error): shown inert.
        styles = ", ".join(printable(p.name) for p in f.job.styles)
        lines = [
            self.title,
            f"{f.image.shape[1]} × {f.image.shape[0]} px, "
            f"{format_duration(f.seconds)} on {printable(f.device or 'unknown')}",
            f"Photo: {printable(f.job.content.name)}",
            f"Style: {styles}",
            *([f"Regions: painted (one mask per style, {len(f.job.masks)} in all)"] if f.job.masks else []),
            f"Preset: {printable(params.preset)}; style weight {params.style_weight:g}, content weight "
            f"{params.content_weight:g}, seed {params.seed}",
        ]
        if f.message:
            lines.append(printable(f.message))
        lines.append("Click to view · right-click to restore its settings, continue from it or export it")
        return "\n".join(lines)


@dataclass(frozen=True)
class Inputs:
    """What is being painted: the photo, and each style with its blend slider's value."""

    content: ImportedImage | None = None
    styles: tuple[tuple[ImportedImage, float], ...] = ()


class Observed(Generic[T]):
    """A model value that emits the owner's ``<name>_changed(value)`` signal when set to a new one."""

    def __init__(self, default: T, same: Callable[[Any, Any], bool] = operator.is_) -> None:
        self.default = default
        self.same = same  # identity by default: records hold arrays, which == cannot compare

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.attribute = f"_{name}"

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        return getattr(instance, self.attribute, self.default)

    def __set__(self, instance: Any, value: T) -> None:
        if self.same(self.__get__(instance), value):
            return
        setattr(instance, self.attribute, value)
        getattr(instance, f"{self.name}_changed").emit(value)


class RunModel(QObject):
    """The parameters being edited, the run (its job, state and records) and the session's history."""

    params_changed = Signal(object)  # StyleParams, or None while the controls are invalid
    inputs_changed = Signal(object)  # Inputs: the photo and styles in the window
    job_changed = Signal(object)  # StyleJob: the job of the run in progress, or of the last one
    state_changed = Signal(object)  # RunState
    record_changed = Signal(object)  # the newest record received (Progress or Finished)
    progress_changed = Signal(object)  # Progress: the furthest iteration of the run so far
    frame_changed = Signal(object)  # Frame: the newest picture of the run, or None
    viewing_changed = Signal(object)  # HistoryEntry shown instead of the run, or None
    draft_changed = Signal(object)  # ui.draft.Draft on view, or None
    devices_changed = Signal(object)  # list[str]: the usable devices, once known
    entry_added = Signal(object)  # HistoryEntry
    entry_dropped = Signal(object)  # HistoryEntry let go beyond HISTORY_LIMIT (before the new one is added)
    entry_changed = Signal(object)  # HistoryEntry whose ``exported`` changed
    # The run's Finished record, untouched; its history entry (history[-1]) was added just before.
    finished = Signal(object)
    # The run ended without a Finished record: the message, and the entry that keeps its last
    # picture (None when it had none).
    failed = Signal(str, object)
    # The run's thread has ended (after finished or failed): another run can start.
    ended = Signal()

    params: Observed[StyleParams | None] = Observed(None, operator.eq)
    inputs: Observed[Inputs] = Observed(Inputs(), operator.eq)
    job: Observed[StyleJob | None] = Observed(None)
    state: Observed[RunState] = Observed(RunState.IDLE)
    record: Observed[Record | None] = Observed(None)
    progress: Observed[Progress | None] = Observed(None)
    frame: Observed[Frame | None] = Observed(None)
    viewing: Observed[HistoryEntry | None] = Observed(None)
    # The instant draft on view (ui.draft.Draft): set by the window while no run's picture is shown;
    # a run's first preview, its result and a history entry replace it.
    draft: Observed[Draft | None] = Observed(None)
    devices: Observed[list[str] | None] = Observed(None, operator.eq)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        stylize: StylizeFn | None = None,
        weights_factory: WeightsFactory | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__(parent)
        self.stylize = stylize
        self.weights_factory = weights_factory
        self.throttle = throttle or Throttle()
        self.history: list[HistoryEntry] = []
        self.last_device = ""
        self.last_weights_id = ""
        self.runs_ended = 0
        self._numbers = 0
        self._pictures = Pictures()
        self._thread: QThread | None = None
        self._worker: StyleWorker | None = None

    # ------------------------------------------------------------------ run
    @property
    def is_running(self) -> bool:
        return self.state is not RunState.IDLE

    @property
    def run_thread(self) -> QThread | None:
        return self._thread

    def start(self, job: StyleJob, snapshotter: Snapshotter | None = None, resume: Any = None) -> None:
        """Run ``job`` in a thread of its own; ``snapshotter`` autosaves its picture now and then.

        ``resume`` (a stopped run's engine.resume.ResumePoint) goes on where that run stopped."""
        if self._thread is not None:
            raise RuntimeError("a run is already in progress")
        thread = QThread()
        thread.setObjectName("painterly-run")
        worker = StyleWorker(
            job,
            stylize=self.stylize,
            weights_factory=self.weights_factory,
            throttle=self.throttle,
            snapshotter=snapshotter,
            pictures=self._pictures,
            resume=resume,
        )
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.record.connect(self.receive)
        worker.failed.connect(self._on_failed)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self.job = job
        self.record = self.progress = self.frame = None
        self.viewing = None
        self.state = RunState.RUNNING
        thread.start()

    def stop(self) -> None:
        """Ask the run to stop; it ends within one iteration with a Finished(STOPPED) record."""
        if self._worker is not None and self.state is RunState.RUNNING:
            self._worker.stop()
            self.state = RunState.STOPPING

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread has ended (only for shutdown; the window never blocks otherwise)."""
        thread = self._thread
        if thread is None:
            return True
        ended = thread.wait(timeout_ms)
        if ended:
            # Queued records still pending are dropped at shutdown; what matters is that no thread runs on.
            self._on_thread_finished()
        return ended

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop any run, pass nothing more on, and wait for its thread (at exit and in tests)."""
        if self._worker is not None:
            self._worker.abort()
        return self.wait(timeout_ms)

    # -------------------------------------------------------------- records
    @Slot(object)
    def receive(self, record: Record) -> None:
        """One record of the run, as the engine made it."""
        if isinstance(record, Finished):
            self._finish(record)
            return
        self.record = record
        if record.preview is not None:
            self.draft = None
            self.frame = Frame(record, self._pictures.take(record))
        # A record passed on late for its picture does not move the progress back.
        if self.progress is None or record.iteration >= self.progress.iteration:
            self.progress = record

    def _finish(self, finished: Finished) -> None:
        image = self._pictures.take(finished)
        self.last_device = finished.device
        self.last_weights_id = finished.weights_id
        self.add_to_history(finished, image)
        self.draft = None
        self.viewing = None
        self.record = finished
        self.finished.emit(finished)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        entry = None
        frame, job = self.frame, self.job
        if frame is not None and job is not None:
            # The engine gave up without a result; the last preview is the last good picture.
            finished = snapshot(job, frame.record, message=f"run failed: {message}")
            entry = self.add_to_history(finished, frame.image, label="failed")
        self.failed.emit(message, entry)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return
        self._thread = self._worker = None
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()
        self._pictures.clear()
        self.runs_ended += 1
        self.state = RunState.IDLE
        self.ended.emit()

    # -------------------------------------------------------------- history
    def add_to_history(self, finished: Finished, image: QImage, label: str = "") -> HistoryEntry:
        self._numbers += 1
        if finished.resume is not None:
            # A resume state holds the optimiser's history (hundreds of MB at print sizes): only the
            # newest stopped run keeps one.
            for older in self.history:
                if older.finished.resume is not None:
                    older.finished = dataclasses.replace(older.finished, resume=None)
        entry = HistoryEntry(self._numbers, finished, image, label=label)
        while len(self.history) >= HISTORY_LIMIT:
            self.entry_dropped.emit(self.history.pop(0))
        self.history.append(entry)
        self.entry_added.emit(entry)
        return entry

    def adopt(self, entries: list[HistoryEntry]) -> None:
        """Take entries made earlier (a restored session) into the history; numbering goes on after them."""
        for entry in entries:
            self._numbers = max(self._numbers, entry.number)
            while len(self.history) >= HISTORY_LIMIT:
                self.entry_dropped.emit(self.history.pop(0))
            self.history.append(entry)
            self.entry_added.emit(entry)

    def remove_entry(self, entry: HistoryEntry) -> None:
        """Delete an entry from the history (History's Delete)."""
        if entry not in self.history:
            return
        if self.viewing is entry:
            self.viewing = None
        self.history.remove(entry)
        self.entry_dropped.emit(entry)

    def mark_exported(self, entry: HistoryEntry) -> None:
        if not entry.exported:
            entry.exported = True
            self.entry_changed.emit(entry)

    def view(self, entry: HistoryEntry | None) -> None:
        """Show a history entry instead of the run (None: the run again)."""
        if entry is not None:
            self.draft = None
        if entry is not None and entry is self.viewing:
            self.viewing_changed.emit(entry)  # picked again: shown again
        self.viewing = entry

    def export_entry(self) -> HistoryEntry | None:
        """What Export saves: the entry being viewed, else the newest one unless a run is in progress."""
        if self.viewing is not None:
            return self.viewing
        if self.is_running:
            return None
        return self.history[-1] if self.history else None

    def export_draft(self) -> Finished | None:
        """The draft's record when Export should save the draft: it is on view and no run is going."""
        return self.draft.finished if self.draft is not None and not self.is_running else None

    def current_picture(self) -> Finished | None:
        """The picture on screen now as a Finished record (a snapshot when a run is in progress)."""
        if self.viewing is not None:
            return self.viewing.finished
        if self.draft is not None:
            return self.draft.finished
        frame, job = self.frame, self.job
        if self.is_running and frame is not None and job is not None:
            iteration = frame.record.iteration
            return snapshot(job, frame.record, message=f"preview saved at iteration {iteration}")
        return self.history[-1].finished if self.history else None
