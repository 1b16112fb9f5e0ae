"""Resume where it stopped: a stopped run in History goes on and ends with the unstopped picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.records import Finished, StopReason
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_picture, wait_for_run
from ui.worker import Throttle


def test_a_stopped_run_resumes_to_the_unstopped_picture(
    make_window: Any, images: dict[str, Path], qtbot: Any
) -> None:
    window = make_window(throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0))
    load_inputs(window, images)
    tiny_params(window, iterations=30, seed=5)
    window.start_run()
    wait_for_run(qtbot, window)
    unstopped: Finished = window.model.history[-1].finished
    assert unstopped.completed and unstopped.resume is None

    with wait_for_picture(qtbot, window):
        window.start_run()
    with qtbot.waitSignal(window.model.finished, timeout=10_000) as stopped_signal:
        window.commands.stop.trigger()
    wait_for_run(qtbot, window)
    stopped: Finished = stopped_signal.args[0]
    assert stopped.reason is StopReason.STOPPED and stopped.resume is not None
    assert stopped.iterations < 30

    entry = window.history.entries[-1]
    with qtbot.waitSignal(window.model.finished, timeout=30_000) as resumed_signal:
        window.resume_entry(entry)
    wait_for_run(qtbot, window)
    resumed: Finished = resumed_signal.args[0]
    assert resumed.completed and resumed.iterations == 30
    np.testing.assert_array_equal(resumed.image, unstopped.image)
    # Only the newest stopped run keeps its (large) state; this one completed, the stopped one keeps it.
    assert window.history.entries[-2].finished.resume is not None
