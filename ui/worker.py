"""Running the engine's generator on a QThread.

The worker only ever talks to the GUI through queued signals; the GUI talks to
it only through ``QThread.requestInterruption`` (which the engine polls via
``should_stop``).  Previews are turned into QImages here, in the worker, so
the GUI thread only has to wrap them in a QPixmap.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from engine.params import StyleJob
from engine.records import Finished, Progress
from ui.qtutil import describe_exception, rgb_to_qimage

log = logging.getLogger(__name__)

# stylize(job, *, should_stop=..., weights=..., preview_interval=...) -> records
StylizeFn = Callable[..., Iterator[Any]]
# Called in the worker thread; None lets the engine load the weights the parameters name.
WeightsFactory = Callable[[], Any]


@dataclass(frozen=True)
class Throttle:
    """How often the worker may signal the GUI (seconds between signals)."""

    preview: float = 0.2  # at most 5 previews a second; the issue asks for at least one
    progress: float = 0.1  # at most 10 progress updates a second: smooth to the eye, light on the GIL
    # What the engine is asked for: a little more often than we show, so a fresh one is always waiting.
    engine_preview: float = 0.15
    # Leave one CPU core to the window: with every core computing, the GUI thread waits for CPU
    # time and for the GIL, and the event loop stalls for hundreds of milliseconds.
    reserve_core: bool = True


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


def leave_a_core_for_the_window() -> None:
    """Cap torch's CPU threads at one fewer than the cores, in the thread that runs the engine."""
    import torch

    wanted = max(1, cpu_cores() - 1)
    if torch.get_num_threads() > wanted:
        log.info("using %d CPU threads for the engine, leaving one core to the window", wanted)
        torch.set_num_threads(wanted)


def _default_stylize() -> StylizeFn:
    # Imported on first use: torch loads in the worker thread, not while the window opens.
    from engine.stylize import stylize

    return stylize


class StyleWorker(QObject):
    """Drives one run.  Lives in its own QThread; ``run`` is connected to ``QThread.started``."""

    # iteration, total, elapsed seconds, losses {"content","style","tv","total"}, level info
    # {"level", "levels", "size": (w, h), "message"}
    progress = Signal(int, int, float, dict, dict)
    # The image as it is being optimised, with the iteration it shows.
    preview = Signal(QImage, int)
    # The final image as a QImage, emitted just before ``finished`` so the GUI never converts
    # a full-size float array itself.
    result = Signal(QImage)
    finished = Signal(object)  # engine.records.Finished
    failed = Signal(str)  # a one-line message for the window
    # The run is over whichever way it ended (after finished or failed).
    done = Signal()

    def __init__(
        self,
        job: StyleJob,
        *,
        stylize: StylizeFn | None = None,
        weights_factory: WeightsFactory | None = None,
        throttle: Throttle | None = None,
        snapshotter: Snapshotter | None = None,
    ) -> None:
        super().__init__()
        self.job = job
        self._stylize = stylize
        self._weights_factory = weights_factory
        self.throttle = throttle or Throttle()
        self._snapshotter = snapshotter
        self._thread: QThread | None = None

    def should_stop(self) -> bool:
        # Polled by the engine between iterations and inside the L-BFGS closure.
        thread = self._thread
        return thread is not None and thread.isInterruptionRequested()

    @Slot()
    def run(self) -> None:
        self._thread = QThread.currentThread()
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
        if self.throttle.reserve_core:
            leave_a_core_for_the_window()
        weights = self._weights_factory() if self._weights_factory is not None else None
        records = stylize(
            self.job,
            should_stop=self.should_stop,
            weights=weights,
            preview_interval=self.throttle.engine_preview,
        )
        try:
            finished = self._drive(records)
        finally:
            # Release the engine's tensors now rather than whenever the generator is collected.
            close = getattr(records, "close", None)
            if close is not None:
                close()
        if finished is None:
            raise RuntimeError("the engine ended without a result")
        self.result.emit(rgb_to_qimage(finished.image))
        self.finished.emit(finished)

    def _drive(self, records: Iterator[Any]) -> Finished | None:
        last_progress = last_preview = -float("inf")
        last_snapshot = time.monotonic()
        pending: Progress | None = None  # newest record with a preview not shown yet
        newest_image: Progress | None = None
        finished: Finished | None = None
        for record in records:
            now = time.monotonic()
            if isinstance(record, Finished):
                finished = record
                break
            if not isinstance(record, Progress):
                continue
            if record.preview is not None:
                pending = newest_image = record
            if pending is not None and now - last_preview >= self.throttle.preview:
                assert pending.preview is not None
                self.preview.emit(rgb_to_qimage(pending.preview), pending.iteration)
                pending = None
                last_preview = now
            last = record.iteration >= record.total
            if last or record.message or now - last_progress >= self.throttle.progress:
                self._emit_progress(record)
                last_progress = now
            if (
                self._snapshotter is not None
                and newest_image is not None
                and now - last_snapshot >= self._snapshotter.interval
            ):
                last_snapshot = now
                try:
                    assert newest_image.preview is not None
                    self._snapshotter.snapshot(self.job, newest_image.preview, newest_image)
                except Exception:  # noqa: BLE001 - an autosave problem must not end the run
                    log.exception("autosave failed")
        return finished

    def _emit_progress(self, record: Progress) -> None:
        level = {
            "level": record.level,
            "levels": record.levels,
            "size": tuple(record.size),
            "message": record.message,
        }
        self.progress.emit(record.iteration, record.total, float(record.elapsed), dict(record.losses), level)


class RunController(QObject):
    """Owns the thread of the current run; one run at a time."""

    started = Signal()
    progress = Signal(int, int, float, dict, dict)
    preview = Signal(QImage, int)
    result = Signal(QImage)
    finished = Signal(object)
    failed = Signal(str)
    # The thread has ended; the controller can start another run.
    stopped = Signal()

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
        self._thread: QThread | None = None
        self._worker: StyleWorker | None = None
        self.runs_ended = 0

    @property
    def is_running(self) -> bool:
        return self._thread is not None

    @property
    def thread(self) -> QThread | None:
        return self._thread

    def start(self, job: StyleJob, snapshotter: Snapshotter | None = None) -> None:
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
        )
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self.progress)
        worker.preview.connect(self.preview)
        worker.result.connect(self.result)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        thread.start()
        self.started.emit()

    def stop(self) -> None:
        """Ask the run to stop; it ends within one iteration with a Finished(STOPPED)."""
        if self._thread is not None:
            self._thread.requestInterruption()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread has ended (only for shutdown; the window never blocks otherwise)."""
        thread = self._thread
        if thread is None:
            return True
        ended = thread.wait(timeout_ms)
        if ended:
            # Queued signals still pending are dropped at shutdown; what matters is that no thread runs on.
            self._on_thread_finished()
        return ended

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return
        self._thread = self._worker = None
        if worker is not None:
            worker.deleteLater()
        thread.deleteLater()
        self.runs_ended += 1
        self.stopped.emit()
