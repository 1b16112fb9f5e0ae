"""Drops anywhere a person would try: the canvas, the Photo pane, the Styles pane, the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from uihelpers import drop, file_mime, make_image

from engine.params import StyleJob, StyleParams
from engine.records import Finished, StopReason
from engine.results import OutputSpec, write_result
from ui.message_bar import Level


def _names(window: Any) -> tuple[str | None, list[str]]:
    photo = window.content_pane.image
    return (photo.name if photo else None), [row.image.name for row in window.style_list.rows]


def test_one_two_three_files_on_the_empty_canvas(make_window: Any, images: dict[str, Path]) -> None:
    for count in (1, 2, 3):
        window = make_window()
        files = [images["content"], images["style"], images["style2"]][:count]
        assert drop(window.result.view.viewport(), file_mime(*files))
        photo, styles = _names(window)
        assert photo == "photo.png"
        assert styles == ["painting.png", "painting2.jpg"][: count - 1]
        assert window.message_bar.level is not Level.ERROR


def test_files_on_the_canvas_with_a_photo_are_styles(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    drop(window.content_pane, file_mime(images["content"]))
    assert drop(window.result.view.viewport(), file_mime(images["style"], images["style2"]))
    assert _names(window) == ("photo.png", ["painting.png", "painting2.jpg"])
    assert "are styles" in window.message_bar.text


def test_several_files_on_the_photo_pane_are_a_photo_and_styles(
    make_window: Any, images: dict[str, Path]
) -> None:
    window = make_window()
    assert drop(window.content_pane, file_mime(images["style"], images["content"], images["style2"]))
    assert _names(window) == ("painting.png", ["photo.png", "painting2.jpg"])
    assert window.message_bar.text == ""  # nothing refused, nothing to say


def test_files_dropped_on_the_window_background(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    # The parameter panel takes no drops itself: the window does.
    assert drop(window.readiness, file_mime(images["content"], images["style"])) or drop(
        window, file_mime(images["content"], images["style"])
    )
    assert _names(window) == ("photo.png", ["painting.png"])
    assert window.run_button.isEnabled()


def test_a_painterly_result_dropped_on_the_canvas_offers_its_recipe(
    make_window: Any, images: dict[str, Path]
) -> None:
    job = StyleJob(images["content"], (images["style"],), StyleParams(size=64, seed=7))
    pixels = np.full((30, 40, 3), 0.5, dtype=np.float32)
    finished = Finished(job, pixels, 4, 1.0, "CPU", {"total": 1.0}, StopReason.COMPLETED)
    target = images["content"].parent / "result.png"  # beside its inputs, as an export usually is
    result = write_result(finished, OutputSpec(target), inputs=(images["content"],))
    window = make_window()
    assert drop(window.result.view.viewport(), file_mime(result))
    assert _names(window) == ("result.png", [])  # used as an image, as dropped
    assert "Restore recipe" in window.message_bar.text
    window.message_bar._on_action()  # the banner's "Restore recipe" button
    assert window.params_panel.last_valid.seed == 7  # the recipe's settings are back


def test_a_plain_image_on_the_canvas_offers_no_recipe(make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    plain = make_image(tmp_path / "plain.png")
    assert drop(window.result.view.viewport(), file_mime(plain))
    assert "recipe" not in window.message_bar.text


def test_a_session_file_dropped_anywhere_opens_that_session(
    make_window: Any, images: dict[str, Path], tmp_path: Path
) -> None:
    window = make_window()
    opened: list[Path] = []
    window.drops.open_session = opened.append
    session = tmp_path / "evening.painterly"
    session.write_bytes(b"PK\x05\x06" + bytes(18))  # what is inside is the session's own business
    assert drop(window.result.view.viewport(), file_mime(session, images["content"]))
    assert opened == [session]
    assert _names(window) == (None, [])  # the session brings its own photo and styles


def test_the_session_suffix_is_the_session_archive_s() -> None:
    from ui.drops import SESSION_SUFFIX

    archive = pytest.importorskip("ui.session.archive")
    assert archive.SUFFIX == SESSION_SUFFIX
