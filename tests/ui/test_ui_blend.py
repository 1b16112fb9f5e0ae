"""The blend of several styles: every slider and number shows the share the engine really uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from uihelpers import drop, file_mime

from engine.params import StyleJob


def _engine_shares(window: Any) -> tuple[float, ...]:
    job = window._draft_job()
    assert job is not None
    return tuple(round(100 * share) for share in job.normalized_blend)


def _shown(window: Any) -> tuple[tuple[int, int], ...]:
    return tuple((row.slider.value(), row.share.value()) for row in window.style_list.rows)


def test_sliders_and_percentages_are_the_engine_s_shares(make_window: Any, images: dict[str, Path]) -> None:
    window = make_window()
    drop(window.content_pane, file_mime(images["content"]))
    drop(window.style_list, file_mime(images["style"], images["style2"]))
    rows = window.style_list.rows
    assert _shown(window) == ((50, 50), (50, 50)) and _engine_shares(window) == (50, 50)
    rows[0].slider.setValue(100)  # all the way: all of the blend
    assert _shown(window) == ((100, 100), (0, 0)) and _engine_shares(window) == (100, 0)
    rows[1].slider.setValue(25)  # a quarter reads a quarter
    assert _shown(window) == ((75, 75), (25, 25)) and _engine_shares(window) == (75, 25)
    assert rows[1].share.text() == "25%"
    # A third style takes an even share; the others keep their proportions.
    drop(window.style_list, file_mime(images["content"]))
    shares = window.style_list.blend()
    assert shares == pytest.approx((50.0, 50 / 3, 100 / 3))
    job = StyleJob(images["content"], tuple(i.path for i in window.style_list.images()), blend=shares)
    assert tuple(100 * s for s in job.normalized_blend) == pytest.approx(shares)


def test_typing_a_share_sets_it(make_window: Any, images: dict[str, Path], qtbot: Any) -> None:
    window = make_window()
    drop(window.content_pane, file_mime(images["content"]))
    drop(window.style_list, file_mime(images["style"], images["style2"]))
    window.show()
    qtbot.waitExposed(window)
    box = window.style_list.rows[1].share
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, "70")
    assert window.style_list.blend() == (50.0, 50.0)  # not while typing: "7" would move the other
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert window.style_list.blend() == pytest.approx((30.0, 70.0))
    assert _shown(window) == ((30, 30), (70, 70)) and _engine_shares(window) == (30, 70)
