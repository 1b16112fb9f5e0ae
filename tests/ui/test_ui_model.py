"""The run model alone, without a window: records in, state and signals out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from uihelpers import FakePrompter

from engine.params import StyleJob, StyleParams
from engine.records import Finished, Progress, StopReason
from ui.autosave import AutosaveStore
from ui.model import HISTORY_LIMIT, Frame, HistoryEntry, RunModel, RunState
from ui.recovery import Recovery
from ui.worker import Throttle

LOSSES = {"content": 1.0, "style": 2.0, "tv": 0.1, "total": 3.1}


@pytest.fixture
def job(images: dict[str, Path]) -> StyleJob:
    return StyleJob(images["content"], (images["style"],), StyleParams(size=32, iterations=10))


@pytest.fixture
def model(qapp: Any, job: StyleJob) -> Iterator[RunModel]:
    model = RunModel()
    model.job = job
    yield model
    model.shutdown()


class Signals:
    """Every signal of a model, in the order it was emitted."""

    NAMES = (
        "params_changed",
        "job_changed",
        "state_changed",
        "record_changed",
        "progress_changed",
        "frame_changed",
        "viewing_changed",
        "devices_changed",
        "entry_added",
        "entry_dropped",
        "finished",
        "failed",
        "ended",
    )

    def __init__(self, model: RunModel) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        for name in self.NAMES:
            getattr(model, name).connect(lambda *args, name=name: self.seen.append((name, args)))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for seen, args in self.seen if seen == name]


def _progress(iteration: int, preview: bool = True, total: int = 10) -> Progress:
    pixels = np.full((6, 8, 3), 10 * iteration, dtype=np.uint8) if preview else None
    return Progress(iteration, total, 0.1 * iteration, LOSSES, pixels)


def _finished(job: StyleJob, reason: StopReason = StopReason.COMPLETED) -> Finished:
    image = np.full((6, 8, 3), 0.25, np.float32)
    return Finished(job, image, 10, 1.0, "CPU (test)", LOSSES, reason, weights_id="vgg-test")


def test_progress_records_move_the_progress_and_the_picture_on(model: RunModel) -> None:
    signals = Signals(model)
    with_picture, without = _progress(1), _progress(2, preview=False)
    model.receive(with_picture)
    assert model.record is with_picture and model.progress is with_picture
    frame = model.frame
    assert isinstance(frame, Frame) and frame.record is with_picture
    assert (frame.image.width(), frame.image.height()) == (8, 6) and frame.image.pixelColor(0, 0).red() == 10
    model.receive(without)
    assert model.progress is without and model.frame is frame  # no picture: the last one stays
    assert signals.names() == [
        "record_changed",
        "frame_changed",
        "progress_changed",
        "record_changed",
        "progress_changed",
    ]
    assert signals.args("progress_changed") == [(with_picture,), (without,)]
    assert model.state is RunState.IDLE and not model.history


def test_a_picture_that_comes_late_does_not_move_the_progress_back(model: RunModel) -> None:
    newer, older = _progress(5, preview=False), _progress(4)
    model.receive(newer)
    signals = Signals(model)
    model.receive(older)
    assert model.progress is newer
    assert model.frame is not None and model.frame.record is older
    assert "progress_changed" not in signals.names()


def test_the_finished_record_goes_into_the_history_untouched(model: RunModel, job: StyleJob) -> None:
    model.receive(_progress(3))
    signals = Signals(model)
    finished = _finished(job)
    model.receive(finished)
    [(entry,)] = signals.args("entry_added")
    assert isinstance(entry, HistoryEntry) and entry.finished is finished and entry.number == 1
    assert model.history == [entry]
    assert (entry.image.width(), entry.image.height()) == (8, 6)
    assert signals.args("finished") == [(finished,)]
    # The entry is there before `finished` is said, so a view can show it.
    assert signals.names().index("entry_added") < signals.names().index("finished")
    assert model.record is finished
    assert model.last_device == "CPU (test)" and model.last_weights_id == "vgg-test"
    assert model.export_entry() is entry and model.current_picture() is finished


def test_viewing_an_entry_and_back(model: RunModel, job: StyleJob) -> None:
    model.receive(_finished(job))
    first = model.history[-1]
    model.receive(_finished(job, StopReason.STOPPED))
    second = model.history[-1]
    signals = Signals(model)
    model.view(first)
    assert model.viewing is first and model.export_entry() is first
    assert model.current_picture() is first.finished
    model.view(first)  # picked again: shown again
    assert signals.args("viewing_changed") == [(first,), (first,)]
    model.view(None)
    assert model.export_entry() is second


def test_while_running_export_waits_and_save_preview_takes_the_newest_picture(
    model: RunModel, job: StyleJob
) -> None:
    model.receive(_finished(job))
    model.state = RunState.RUNNING  # as start() sets it, without a thread
    assert model.is_running and model.export_entry() is None
    model.receive(_progress(6))
    model.receive(_progress(7, preview=False))
    picture = model.current_picture()
    assert picture is not None and picture.iterations == 6 and picture.reason is StopReason.STOPPED
    assert picture.message == "preview saved at iteration 6" and picture.job is job
    assert picture.image.dtype == np.float32 and picture.image[0, 0, 0] == pytest.approx(60 / 255)


def test_the_history_keeps_the_newest_entries(model: RunModel, job: StyleJob) -> None:
    finished = _finished(job)
    for _ in range(HISTORY_LIMIT):
        model.receive(finished)
    oldest = model.history[0]
    signals = Signals(model)
    model.receive(finished)
    assert signals.names()[:2] == ["entry_dropped", "entry_added"]
    assert signals.args("entry_dropped") == [(oldest,)]
    assert len(model.history) == HISTORY_LIMIT and model.history[-1].number == HISTORY_LIMIT + 1


def test_properties_signal_only_a_change(model: RunModel) -> None:
    signals = Signals(model)
    model.params = StyleParams(seed=7)
    model.params = StyleParams(seed=7)  # equal: no signal
    model.params = None  # the controls are invalid
    model.devices = ["auto", "cpu"]
    model.devices = ["auto", "cpu"]
    assert signals.args("params_changed") == [(StyleParams(seed=7),), (None,)]
    assert signals.args("devices_changed") == [(["auto", "cpu"],)]


# -- runs on a thread, with a scripted engine ----------------------------------------------------


def _script(job_records: Any, failure: BaseException | None = None) -> Any:
    def stylize(job: StyleJob, *, should_stop: Any, weights: Any, preview_interval: float) -> Iterator[Any]:
        yield from job_records(job)
        if failure is not None:
            raise failure

    return stylize


def test_a_run_goes_from_idle_to_running_and_back_with_every_record_untouched(
    qtbot: Any, job: StyleJob
) -> None:
    yielded: list[Any] = []

    def records(job: StyleJob) -> Iterator[Any]:
        for record in [_progress(i) for i in range(1, 4)] + [_finished(job)]:
            yielded.append(record)
            yield record

    model = RunModel(stylize=_script(records), throttle=Throttle(0.0, 0.0, 0.0, tune_threads=False))
    received: list[Any] = []
    states: list[RunState] = []
    model.record_changed.connect(received.append)
    model.state_changed.connect(states.append)
    with qtbot.waitSignal(model.ended, timeout=10_000):
        model.start(job)
        assert model.is_running and model.job is job and model.run_thread is not None
        with pytest.raises(RuntimeError):
            model.start(job)  # one run at a time
    assert states == [RunState.RUNNING, RunState.IDLE]
    assert len(received) == len(yielded) and all(a is b for a, b in zip(received, yielded, strict=True))
    assert model.history[-1].finished is yielded[-1]
    assert model.runs_ended == 1 and model.run_thread is None


def test_stop_says_stopping_until_the_thread_ends(qtbot: Any, job: StyleJob) -> None:
    def stylize(job: StyleJob, *, should_stop: Any, weights: Any, preview_interval: float) -> Iterator[Any]:
        for i in range(1, 100_000):
            if should_stop():
                yield _finished(job, StopReason.STOPPED)
                return
            yield _progress(i, preview=False, total=100_000)

    model = RunModel(stylize=stylize, throttle=Throttle(tune_threads=False))
    states: list[RunState] = []
    model.state_changed.connect(states.append)
    with qtbot.waitSignal(model.ended, timeout=10_000):
        with qtbot.waitSignal(model.progress_changed, timeout=10_000):
            model.start(job)
        model.stop()
        assert model.state is RunState.STOPPING
    assert states == [RunState.RUNNING, RunState.STOPPING, RunState.IDLE]
    assert model.history[-1].finished.reason is StopReason.STOPPED


def test_a_failed_run_keeps_its_last_picture(qtbot: Any, job: StyleJob) -> None:
    def records(job: StyleJob) -> Iterator[Any]:
        yield _progress(1)
        yield _progress(2, preview=False)

    model = RunModel(
        stylize=_script(records, RuntimeError("CUDA error: device-side assert")),
        throttle=Throttle(0.0, 0.0, 0.0, tune_threads=False),
    )
    with qtbot.waitSignal(model.failed, timeout=10_000) as failed:
        model.start(job)
    qtbot.waitUntil(lambda: not model.is_running)
    message, entry = failed.args
    assert "device-side assert" in message
    assert entry is model.history[-1] and entry.label == "failed"
    assert entry.finished.iterations == 1 and entry.finished.message == f"run failed: {message}"
    assert entry.finished.job is job


def test_recovery_puts_the_autosave_into_the_history(
    qapp: Any, job: StyleJob, locations: Any, images: dict[str, Path]
) -> None:
    store = AutosaveStore(locations.data_dir)
    pixels = np.full((24, 32, 3), 90, dtype=np.uint8)
    store.snapshot(job, pixels, Progress(17, 300, 4.0, LOSSES, pixels))
    model = RunModel()
    applied: list[tuple[StyleJob, str]] = []
    said: list[str] = []
    recovery = Recovery(
        store,
        FakePrompter(),
        model,
        lambda job, source, recipe: applied.append((job, source)),
        lambda image: None,
        lambda text, level: said.append(text),
    )
    assert recovery.check()
    entry = model.viewing
    assert entry is not None and entry is model.history[-1] and entry.label == "recovered"
    assert entry.finished.iterations == 17 and entry.finished.message == "recovered"
    assert applied and applied[0][0].params.size == 32
    assert "Restored" in said[-1] and not store.image_path.exists()
