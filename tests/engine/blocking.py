"""A guard for tests of inputs that could block (FIFOs, devices): a regression fails, never hangs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def finishes_within(seconds: float, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread: a regression that blocks fails the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
