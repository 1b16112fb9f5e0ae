"""Shapes the network cannot use are refused before a thread starts, with the size that works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from tests.ui.uihelpers import load_inputs, tiny_params
from ui.message_bar import Level


def test_an_output_too_thin_is_refused_before_a_thread_starts(make_window: Any, images: dict[str, Path]):
    Image.new("RGB", (400, 20), "orange").save(images["content"])  # 20:1 at 32 px is 1 px tall
    window = make_window()
    load_inputs(window, images)
    tiny_params(window, size=32)
    window.start_run()
    assert not window.is_running and window.model.runs_ended == 0
    assert window.message_bar.level is Level.ERROR
    assert "at least 16 px" in window.message_bar.text and "320 px" in window.message_bar.text


def test_a_painting_too_thin_is_refused_before_a_thread_starts(make_window: Any, images: dict[str, Path]):
    Image.new("RGB", (1, 4000), "orange").save(images["style"])
    window = make_window()
    load_inputs(window, images)
    tiny_params(window)
    window.start_run()
    assert not window.is_running and window.model.runs_ended == 0
    assert "too narrow to use as a style" in window.message_bar.text
