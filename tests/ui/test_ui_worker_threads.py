"""The window computes with as many CPU threads as the command line, in a thread of lowered priority."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import QThread

from engine.params import StyleJob, StyleParams
from engine.records import Finished, StopReason
from ui.model import RunModel
from ui.worker import ENGINE_NICE, Throttle, engine_threads


def _cli_threads() -> int:
    """What the command line computes with: torch's default in a fresh interpreter (cli.py sets none)."""
    code = "import torch; print(torch.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def test_engine_threads_are_the_command_line_s() -> None:
    assert engine_threads() == _cli_threads()


def test_the_run_uses_them_at_lowered_priority(qtbot: Any, images: dict[str, Path]) -> None:
    seen: dict[str, Any] = {}

    def stylize(job: StyleJob, *, should_stop: Any, weights: Any, preview_interval: float) -> Any:
        seen["threads"] = torch.get_num_threads()
        seen["priority"] = QThread.currentThread().priority()
        if sys.platform.startswith("linux"):
            seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        yield Finished(
            job, np.zeros((4, 4, 3), np.float32), 1, 0.0, "CPU", {"total": 1.0}, StopReason.COMPLETED
        )

    before = torch.get_num_threads()
    main_nice = (
        os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform.startswith("linux") else 0
    )
    torch.set_num_threads(1)  # as a test or an earlier "leave a core" run may have left it
    model = RunModel(stylize=stylize, throttle=Throttle(preview=0.0, progress=0.0, engine_preview=0.0))
    try:
        with qtbot.waitSignal(model.ended, timeout=10_000):
            model.start(StyleJob(images["content"], (images["style"],), StyleParams(size=32)))
    finally:
        torch.set_num_threads(before)
    assert seen["threads"] == _cli_threads()
    assert seen["priority"] == QThread.Priority.LowPriority
    if sys.platform.startswith("linux"):
        assert seen["nice"] >= ENGINE_NICE
        # Only the engine's thread gives way: the window's own thread keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_a_thread_count_set_in_the_environment_is_followed(monkeypatch: Any, variable: str) -> None:
    monkeypatch.setenv(variable, "3")
    assert engine_threads() == 3
