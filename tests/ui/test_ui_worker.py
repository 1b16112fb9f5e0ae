"""The worker passes the engine's records on untouched: a subset, in order, each the very object yielded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.params import StyleJob, StyleParams
from engine.records import Finished, Progress, StopReason
from ui.worker import Pictures, StyleWorker, Throttle, pass_on

UNTHROTTLED = Throttle(preview=0.0, progress=0.0, engine_preview=0.0, tune_threads=False)
LOSSES = {"content": 1.0, "style": 2.0, "tv": 0.1, "total": 3.1}


@pytest.fixture
def job(images: dict[str, Path]) -> StyleJob:
    return StyleJob(images["content"], (images["style"],), StyleParams(size=32, iterations=10))


def _progress(iteration: int, total: int = 10, preview: bool = True, message: str = "") -> Progress:
    pixels = np.full((6, 8, 3), iteration, dtype=np.uint8) if preview else None
    return Progress(iteration, total, 0.01 * iteration, LOSSES, pixels, message=message)


def _finished(job: StyleJob, iterations: int = 10, reason: StopReason = StopReason.COMPLETED) -> Finished:
    return Finished(job, np.full((6, 8, 3), 0.5, np.float32), iterations, 0.1, "CPU", LOSSES, reason)


class Script:
    """A stand-in engine that yields prepared records and remembers how it was called."""

    def __init__(self, records: list[Any], failure: BaseException | None = None) -> None:
        self.records = records
        self.failure = failure
        self.should_stop: Any = None
        self.closed = False

    def __call__(
        self, job: StyleJob, *, should_stop: Any, weights: Any, preview_interval: float
    ) -> Iterator[Any]:
        self.should_stop = should_stop
        try:
            yield from self.records
            if self.failure is not None:
                raise self.failure
        finally:
            self.closed = True


def _drive(worker: StyleWorker) -> tuple[list[Any], list[str], list[bool]]:
    """Run the worker in this thread (no QThread needed) and collect what it signals."""
    passed: list[Any] = []
    failed: list[str] = []
    done: list[bool] = []
    worker.record.connect(passed.append)
    worker.failed.connect(failed.append)
    worker.done.connect(lambda: done.append(True))
    worker.run()
    return passed, failed, done


def test_every_record_is_passed_on_as_the_very_object_the_engine_yielded(qapp: Any, job: StyleJob) -> None:
    records: list[Any] = [_progress(i, preview=i % 2 == 0) for i in range(1, 11)] + [_finished(job)]
    script = Script(records)
    pictures = Pictures()
    worker = StyleWorker(job, stylize=script, throttle=UNTHROTTLED, pictures=pictures)
    passed, failed, done = _drive(worker)
    assert len(passed) == len(records)
    assert all(a is b for a, b in zip(passed, records, strict=True))
    assert not failed and done == [True]
    assert script.closed
    # The pictures were made in the worker, for the records that carry one.
    finished_image = pictures.take(records[-1])
    assert (finished_image.width(), finished_image.height()) == (8, 6)
    assert pictures.take(records[1]).pixelColor(0, 0).red() == 2


def test_throttled_records_are_a_subset_in_order_and_never_copied(job: StyleJob) -> None:
    """A fast engine (a preview every 10 ms): previews at most every 0.2 s, progress every 0.1 s."""
    records: list[Any] = [_progress(i, total=100) for i in range(1, 101)]
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    throttle = Throttle(preview=0.2, progress=0.1)
    passed = list(pass_on(iter([*records, _finished(job, 100)]), throttle, clock=clock))
    identities = [id(r) for r in records]
    progress = [r for r in passed if isinstance(r, Progress)]
    assert all(id(r) in identities for r in progress), "a record was copied or made up"
    assert len({id(r) for r in progress}) == len(progress), "a record was passed on twice"
    assert [r.iteration for r in progress] == sorted(r.iteration for r in progress)
    assert 4 <= len(progress) <= 7  # one second of run: about five previews, not a hundred
    assert progress[-1] is records[-1], "the last iteration is always passed on"
    assert isinstance(passed[-1], Finished)


def test_a_record_held_back_for_its_preview_can_come_after_newer_progress(job: StyleJob) -> None:
    first, held, plain, plain2 = (
        _progress(1, 9),
        _progress(2, 9),
        _progress(3, 9, False),
        _progress(4, 9, False),
    )
    # Seconds: the first reading starts the autosave clock, then one per record.
    times = iter([0.0, 0.0, 0.05, 0.12, 0.25])
    passed = list(pass_on(iter([first, held, plain, plain2]), Throttle(), clock=lambda: next(times)))
    # 0.00: first; 0.05: held back (a preview 0.05 s after the last); 0.12: plain, for its progress;
    # 0.25: the held preview is due and goes first, then plain2 for its progress.
    assert [r.iteration for r in passed] == [1, 3, 2, 4]
    assert all(a is b for a, b in zip(passed, [first, plain, held, plain2], strict=True))


def test_a_held_preview_is_dropped_for_a_newer_one(job: StyleJob) -> None:
    first, held, newer = _progress(1, 9), _progress(2, 9), _progress(3, 9)
    times = iter([0.0, 0.0, 0.05, 0.25])
    passed = list(pass_on(iter([first, held, newer]), Throttle(), clock=lambda: next(times)))
    assert passed == [first, newer] and passed[1] is newer


def test_notices_and_the_last_iteration_are_never_dropped(job: StyleJob) -> None:
    notice = _progress(2, 3, preview=False, message="fell back to float32")
    records = [_progress(1, 3), notice, _progress(3, 3)]
    passed = list(pass_on(iter(records), Throttle(preview=10.0, progress=10.0), clock=lambda: 1.0))
    assert passed == records


def test_the_snapshotter_gets_the_newest_picture_in_the_worker_thread(job: StyleJob) -> None:
    class Recorder:
        interval = 0.0

        def __init__(self) -> None:
            self.calls: list[tuple[StyleJob, np.ndarray, Progress]] = []

        def snapshot(self, job: StyleJob, image: np.ndarray, progress: Progress) -> None:
            self.calls.append((job, image, progress))

    recorder = Recorder()
    records = [_progress(1, 3), _progress(2, 3, preview=False)]
    list(
        pass_on(
            iter(records), UNTHROTTLED, job=job, snapshotter=recorder, clock=iter([0.0, 1.0, 2.0]).__next__
        )
    )
    assert [call[2] for call in recorder.calls] == [records[0], records[0]]
    assert recorder.calls[0][0] is job and recorder.calls[0][1] is records[0].preview


def test_stop_is_cooperative_and_the_stopped_record_still_arrives(qapp: Any, job: StyleJob) -> None:
    worker = StyleWorker(job, throttle=UNTHROTTLED)

    def stylize(job: StyleJob, *, should_stop: Any, weights: Any, preview_interval: float) -> Iterator[Any]:
        for i in range(1, 1000):
            if should_stop():
                yield _finished(job, i - 1, StopReason.STOPPED)
                return
            if i == 3:
                worker.stop()  # as the window's Stop does, from another thread
            yield _progress(i, 1000)

    worker._stylize = stylize
    passed, failed, _ = _drive(worker)
    assert [r.iteration for r in passed[:-1]] == [1, 2, 3]
    assert isinstance(passed[-1], Finished) and passed[-1].reason is StopReason.STOPPED
    assert not failed


def test_abort_passes_nothing_more_on_between_yields(qapp: Any, job: StyleJob) -> None:
    worker = StyleWorker(job, throttle=UNTHROTTLED)
    script = Script([_progress(i, 1000, preview=False) for i in range(1, 1000)])
    worker._stylize = script
    worker.record.connect(lambda record: worker.abort() if record.iteration == 2 else None)
    passed, failed, done = _drive(worker)
    assert [r.iteration for r in passed] == [1, 2]
    assert not failed and done == [True]  # no Finished, and that is no failure when aborted
    assert script.closed and script.should_stop()


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (RuntimeError("CUDA error: device-side assert"), "device-side assert"),
        (MemoryError(), "Out of memory"),
        (None, "the engine ended without a result"),
    ],
)
def test_a_run_without_a_finished_record_fails_with_one_line_and_ends(
    qapp: Any, job: StyleJob, failure: BaseException | None, expected: str
) -> None:
    script = Script([_progress(1), _progress(2)], failure)
    passed, failed, done = _drive(StyleWorker(job, stylize=script, throttle=UNTHROTTLED))
    assert len(passed) == 2
    assert len(failed) == 1 and expected in failed[0] and "\n" not in failed[0]
    assert done == [True] and script.closed


def test_pictures_are_only_taken_for_the_record_they_were_made_for() -> None:
    pictures = Pictures()
    record = _progress(7)
    pictures.make(record)
    twin = _progress(7)
    # Another record with the same pixels gets its own picture, made on the spot.
    assert pictures.take(twin).pixelColor(0, 0).red() == 7
    made = pictures.take(record)
    assert made.pixelColor(0, 0).red() == 7
    with pytest.raises(ValueError):
        pictures.take(_progress(8, preview=False))
