"""Running the engine's generator on a QThread and passing its records on, untouched.

Modelled on superqt's generator worker (``superqt.utils.GeneratorWorker``): the worker drives a
generator in its own thread and emits each object it passes on through one ``Signal(object)``,
with an abort flag checked between yields.  superqt itself is not used: importing it costs the
window's start-up a tenth of a second, and its worker ends silently, without ``finished``, when
the generator raises a ``RuntimeError`` (a CUDA error is one), so a run would never end.

Unlike an abort, Stop is cooperative: the engine polls ``should_stop`` between iterations and
ends with a ``Finished(STOPPED)`` record, which is passed on like any other.  Not every record
is passed on: ``pass_on`` keeps the GUI to a few previews and progress updates a second, so
the event loop stays responsive however fast the engine runs.  The pictures of the records
passed on are turned into QImages here, in the worker thread (``Pictures``), so the GUI thread
never converts a full-size array itself.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot
from PySide6.QtGui import QImage

from engine.params import StyleJob
from engine.records import Finished, Progress, Record
from ui.qtutil import describe_exception, rgb_to_qimage

log = logging.getLogger(__name__)

# stylize(job, *, should_stop=..., weights=..., preview_interval=...) -> records
StylizeFn = Callable[..., Iterator[Any]]
# Called in the worker thread; None lets the engine load the weights the parameters name.
WeightsFactory = Callable[[], Any]


@dataclass(frozen=True)
class Throttle:
    """How often the worker may signal the GUI (seconds between signals)."""

    preview: float = 0.2  # at most 5 previews a second (at least one a second keeps a run looking live)
    progress: float = 0.1  # at most 10 progress updates a second: smooth to the eye, light on the GIL
    # What the engine is asked for: a little more often than we show, so a fresh one is always waiting.
    engine_preview: float = 0.15
    # Compute with as many CPU threads as the command line, in a thread of lowered priority. (It used
    # to leave one core to the window, which on a 2-core machine halved the speed; the window stays
    # responsive without that: benchmarks/window_threads.py measures both.)
    tune_threads: bool = True


class Snapshotter(Protocol):
    """Receives the latest image now and then, in the worker thread (crash-safety autosave)."""

    # Seconds between snapshots.
    interval: float

    def snapshot(self, job: StyleJob, image: np.ndarray, progress: Progress) -> None: ...


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def engine_threads() -> int:
    """The CPU threads the command line computes with: torch's own default on this machine.

    The command line never sets it, so it is what torch chooses at start-up: MKL_NUM_THREADS or
    OMP_NUM_THREADS when set, else its default pool size (the physical cores), which
    ``get_num_interop_threads`` reports as long as nobody set that pool (nothing in Painterly does).
    Worked out afresh rather than read from ``get_num_threads``, which a test or an earlier run may
    have changed in this process.
    """
    import torch

    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):  # torch lets MKL's win over OpenMP's
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return max(1, torch.get_num_interop_threads())


def use_every_core() -> int:
    """Compute with as many threads as the command line (torch's setting is for the whole process)."""
    import torch

    wanted = engine_threads()
    if torch.get_num_threads() != wanted:
        log.info("using %d CPU threads for the engine, as the command line does", wanted)
        torch.set_num_threads(wanted)
    return wanted


# Linux ignores QThread priorities for ordinary threads; a nice value is what its scheduler weighs.
# At +5 the window's thread outweighs a busy engine thread three to one when both want a core,
# while on an otherwise idle machine the engine still gets every core it asks for.
ENGINE_NICE = 5


def lower_this_thread_priority() -> None:
    """Let the window's thread go first when both want the CPU (called in the engine's thread).

    torch's worker threads start from the thread that first computes, so they inherit its nice value.
    """
    from PySide6.QtCore import QThread

    thread = QThread.currentThread()
    if thread is not None:
        thread.setPriority(QThread.Priority.LowPriority)
    if sys.platform.startswith("linux"):
        try:
            native = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, native)
            os.setpriority(os.PRIO_PROCESS, native, min(19, max(now, ENGINE_NICE)))
        except OSError as error:  # e.g. a sandbox that forbids it: the run goes on as it is
            log.info("could not lower the engine thread's priority: %s", error)


def _default_stylize() -> StylizeFn:
    # Imported on first use: torch loads in the worker thread, not while the window opens.
    from engine.stylize import stylize

    return stylize


class Pictures:
    """The QImages the worker made for the records it passed on, until the GUI takes them.

    Each is kept with its record, so a picture can only be taken for the very record it shows.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[int, tuple[Record, QImage]] = {}

    def make(self, record: Record) -> None:
        """In the worker thread: the QImage of a record's preview, or of a Finished record's result."""
        pixels = record.image if isinstance(record, Finished) else record.preview
        if pixels is None:
            return
        image = rgb_to_qimage(pixels)
        with self._lock:
            self._made[id(record)] = (record, image)

    def take(self, record: Record) -> QImage:
        """In the GUI thread: the record's QImage (made here if the worker did not make it)."""
        with self._lock:
            made = self._made.pop(id(record), None)
        if made is not None and made[0] is record:
            return made[1]
        pixels = record.image if isinstance(record, Finished) else record.preview
        if pixels is None:
            raise ValueError(f"{type(record).__name__} has no picture")
        return rgb_to_qimage(pixels)

    def clear(self) -> None:
        with self._lock:
            self._made.clear()


def pass_on(
    records: Iterator[Any],
    throttle: Throttle,
    *,
    job: StyleJob | None = None,
    snapshotter: Snapshotter | None = None,
    pictures: Pictures | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Record]:
    """The engine's records the GUI should see, in the worker thread; each passed on unchanged, once.

    A record with a preview is passed on only when a preview may be shown: at most every
    ``throttle.preview`` seconds, always the newest one.  One held back is passed on later, so
    it can come after a newer record that was passed on for its progress.  Progress goes at
    most every ``throttle.progress`` seconds, and always for the last iteration and for a record
    with a message.  The Finished record ends the stream.  Every ``snapshotter.interval``
    seconds the newest picture is autosaved.
    """
    last_progress = last_preview = -float("inf")
    last_snapshot = clock()
    pending: Progress | None = None  # newest record with a preview not passed on yet
    newest_image: Progress | None = None
    for record in records:
        if isinstance(record, Finished):
            if pictures is not None:
                pictures.make(record)
            yield record
            return
        if not isinstance(record, Progress):
            continue
        now = clock()
        if record.preview is not None:
            pending = newest_image = record
        # The last iteration and a notice are always passed on, with their preview if they have one.
        must = record.iteration >= record.total or bool(record.message)
        passed = False
        if pending is not None and (now - last_preview >= throttle.preview or (must and pending is record)):
            if pictures is not None:
                pictures.make(pending)
            yield pending
            passed = pending is record  # then its progress went with it
            pending = None
            last_preview = now
        # A record held back for its preview is passed on whole, later: the next one brings the progress.
        if passed or (record is not pending and (must or now - last_progress >= throttle.progress)):
            if not passed:
                yield record
            last_progress = now
        if (
            snapshotter is not None
            and job is not None
            and newest_image is not None
            and now - last_snapshot >= snapshotter.interval
        ):
            last_snapshot = now
            try:
                assert newest_image.preview is not None
                snapshotter.snapshot(job, newest_image.preview, newest_image)
            except Exception:  # noqa: BLE001 - an autosave problem must not end the run
                log.exception("autosave failed")


class StyleWorker(QObject):
    """Drives one run.  Lives in its own QThread; ``run`` is connected to ``QThread.started``."""

    # Each engine record passed on, untouched: Progress records (see pass_on), then the Finished.
    record = Signal(object)
    # The run ended without a Finished record: a one-line message for the window.
    failed = Signal(str)
    # The run is over whichever way it ended (after the last record, or after failed).
    done = Signal()

    def __init__(
        self,
        job: StyleJob,
        *,
        stylize: StylizeFn | None = None,
        weights_factory: WeightsFactory | None = None,
        throttle: Throttle | None = None,
        snapshotter: Snapshotter | None = None,
        pictures: Pictures | None = None,
        resume: Any = None,
    ) -> None:
        super().__init__()
        self.job = job
        # A stopped run's engine.resume.ResumePoint: the engine goes on exactly where it stopped.
        self.resume = resume
        self._stylize = stylize
        self._weights_factory = weights_factory
        self.throttle = throttle or Throttle()
        self._snapshotter = snapshotter
        self.pictures = pictures
        self._stop = threading.Event()
        self._abort = threading.Event()

    def stop(self) -> None:
        """Ask the engine to stop; it ends within an iteration with a Finished(STOPPED) record."""
        self._stop.set()

    def abort(self) -> None:
        """Stop, and pass nothing more on: the worker ends at the engine's next record."""
        self._abort.set()
        self._stop.set()

    @property
    def abort_requested(self) -> bool:
        return self._abort.is_set()

    def should_stop(self) -> bool:
        # Polled by the engine between iterations and inside the L-BFGS closure.
        return self._stop.is_set()

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except MemoryError as error:
            self.failed.emit(describe_exception(error))
        except Exception as error:  # noqa: BLE001 - every engine failure must reach the window as a message
            log.exception("the run failed")
            self.failed.emit(describe_exception(error))
        finally:
            # Hand the worker back to the GUI thread so deleteLater() there can free it; a dead
            # thread has no event loop left to do that.
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            self.done.emit()

    def _run(self) -> None:
        stylize = self._stylize or _default_stylize()
        if self.throttle.tune_threads:
            use_every_core()
            lower_this_thread_priority()
        weights = self._weights_factory() if self._weights_factory is not None else None
        going_on = {"resume": self.resume} if self.resume is not None else {}
        records = stylize(
            self.job,
            should_stop=self.should_stop,
            weights=weights,
            preview_interval=self.throttle.engine_preview,
            **going_on,
        )
        passed = pass_on(
            records, self.throttle, job=self.job, snapshotter=self._snapshotter, pictures=self.pictures
        )
        finished = False
        try:
            while not self.abort_requested:
                record = next(passed, None)
                if record is None or self.abort_requested:
                    break
                self.record.emit(record)
                finished = isinstance(record, Finished)
        finally:
            # Release the engine's tensors now rather than whenever the generator is collected.
            passed.close()
            close = getattr(records, "close", None)
            if close is not None:
                close()
        if not finished and not self.abort_requested:
            raise RuntimeError("the engine ended without a result")
