"""Paint every custom widget once, off screen, before the first run.

PySide6 builds each Python enum type (QPainter.RenderHint, Qt.PenStyle, ...)
the first time it is used, at 5-10 ms apiece on Python 3.11; the first run
touches some sixty of them for the first time, which stalled the event loop
for half a second.  Doing it while the window is being built moves that cost
to start-up, once per process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage

from engine.params import StyleJob, StyleParams
from engine.records import Finished, Progress, StopReason

log = logging.getLogger(__name__)

_done = False


def _render(widget: object, size: QSize) -> None:
    widget.resize(size)  # type: ignore[attr-defined]
    target = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    target.fill(QColor(0, 0, 0, 0))
    widget.render(target)  # type: ignore[attr-defined]


def warm_up() -> None:
    global _done
    if _done:
        return
    _done = True
    started = time.perf_counter()
    from ui.history import HistoryStrip
    from ui.message_bar import Level, MessageBar
    from ui.model import HistoryEntry
    from ui.progress_panel import ProgressPanel
    from ui.result_view import ResultView

    image = QImage(16, 12, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkGray)
    losses = {"content": 1.0, "style": 2.0, "tv": 0.1, "total": 3.1}

    progress = ProgressPanel()
    progress.start(10)
    progress.show_progress(Progress(1, 10, 0.1, losses, level=1, levels=2, size=(16, 12), message="x"))
    progress.show_progress(Progress(2, 10, 0.2, losses, level=2, levels=2, size=(16, 12)))
    progress.finish("Done", 10)
    _render(progress, QSize(500, 90))

    result = ResultView()
    _render(result, QSize(300, 200))  # empty state
    result.view.set_photo(image)
    _render(result, QSize(300, 200))  # photo only
    result.view.set_result(image)
    result.view.set_badge("Draft")
    _render(result, QSize(300, 200))  # the draft's badge
    result.view.set_badge("")
    result.view.set_split(0.5)
    _render(result, QSize(300, 200))  # split line
    result.view.set_hold_compare(True)
    _render(result, QSize(300, 200))  # hold to compare
    result.view.zoom_by(3.0)
    result.view.fit()

    history = HistoryStrip()
    job = StyleJob(Path("photo.png"), (Path("style.png"),), StyleParams())
    pixels = np.zeros((12, 16, 3), dtype=np.float32)
    finished = Finished(job, pixels, 1, 0.1, "CPU", losses, StopReason.STOPPED)
    history.add_entry(HistoryEntry(1, finished, image))
    _render(history, QSize(400, 130))

    bar = MessageBar()
    for level in Level:
        bar.show_message("warming up", level, ("Act", lambda: None))
        _render(bar, QSize(400, 40))
    for widget in (progress, result, history, bar):
        widget.deleteLater()
    log.debug("widgets warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
