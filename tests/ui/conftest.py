"""Fixtures for the window's tests: offscreen Qt, isolated folders, tiny images, a fast network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before anything imports Qt: no display is needed or used.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")
# `pytest tests/ui` from anywhere: the repository root holds the engine and ui packages.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from uihelpers import FakePrompter, make_image  # noqa: E402

from ui.settings import AppLocations  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything that falls back to the environment still stays inside the test's folder.
    monkeypatch.setenv("PAINTERLY_CONFIG_DIR", str(tmp_path / "appdirs-env"))


@pytest.fixture
def locations(tmp_path: Path) -> AppLocations:
    return AppLocations.under(tmp_path / "appdirs")


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "pictures"
    folder.mkdir()
    return {
        "content": make_image(folder / "photo.png", 40, 30, seed=1),
        "style": make_image(folder / "painting.png", 32, 32, seed=2),
        "style2": make_image(folder / "painting2.jpg", 36, 28, seed=3),
    }


@pytest.fixture(scope="session")
def tiny_weights() -> Any:
    from engine.weights import random_weights

    return random_weights(width_divisor=16, seed=0)


@pytest.fixture(scope="session")
def warm_engine() -> None:
    """Import what the engine imports lazily on its first optimiser step (torch._dynamo: seconds).

    Done once, here in the main thread, so runs in the tests take their steady-state time and
    the event-loop measurement sees the run, not a one-off import.
    """
    import torch

    import engine.stylize  # noqa: F401

    # Tiny images gain nothing from parallel kernels, and on a shared 2-core machine a second busy
    # thread only competes with the GUI thread the tests measure.
    torch.set_num_threads(1)
    parameter = torch.zeros(1, requires_grad=True)
    torch.optim.Adam([parameter])
    torch.optim.LBFGS([parameter])


@pytest.fixture(scope="session")
def instant_networks() -> None:
    """Load the instant draft's networks once, here in the main thread, when they are installed.

    Their first load imports onnx, whose ml_dtypes extension holds the GIL for about half a second
    (measured on the 2-core CPU); the window does that once, in the background at start-up. Done
    here, the tests see the draft's steady-state behaviour, not a one-off import.
    """
    from engine import instant
    from engine.errors import InputError

    try:
        instant.find_models()
        instant._sessions()
    except (InputError, ImportError):
        pass  # the tests that need the networks skip; the window copes without them


@pytest.fixture
def prompter() -> FakePrompter:
    return FakePrompter()


WindowFactory = Callable[..., Any]


@pytest.fixture
def make_window(
    qtbot: Any,
    locations: AppLocations,
    prompter: FakePrompter,
    tiny_weights: Any,
    warm_engine: None,
    instant_networks: None,
) -> Iterator[WindowFactory]:
    """Build MainWindows wired to the tiny network and isolated folders; all are shut down after the test."""
    from ui.main_window import MainWindow

    windows: list[Any] = []

    def factory(**overrides: Any) -> Any:
        options: dict[str, Any] = {
            "locations": locations,
            "prompter": prompter,
            "weights_factory": lambda: tiny_weights,
            "temp_dirs": [],
            "device_probe": lambda: ["auto", "cpu"],
        }
        options.update(overrides)
        window = MainWindow(**options)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield factory
    for window in windows:
        window.shutdown()
