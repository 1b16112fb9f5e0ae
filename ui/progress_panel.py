"""Run progress: a bar with iteration, speed, elapsed and remaining time, and a live loss chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from engine.records import Progress
from ui.qtutil import format_duration, format_number

# Colours chosen to stay distinguishable for the common colour-vision deficiencies.
SERIES: tuple[tuple[str, str, QColor], ...] = (
    ("total", "total", QColor("#f0f0f0")),
    ("content", "content", QColor("#4ea3ff")),
    ("style", "style", QColor("#f0a030")),
    ("tv", "smoothness", QColor("#b07cff")),
)
# Enough for a smooth line in a chart a few hundred pixels wide; older points are thinned out.
MAX_POINTS = 240
# The chart is redrawn at most this often (ms): its Python painting shares the GIL with the run.
CHART_REFRESH_MS = 250
# Pixels between one legend entry's text and the next entry's swatch (the swatch and its gap included).
LEGEND_GAP = 26


class LossChart(QWidget):
    """log10 of each weighted loss term against the iteration, painted with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LossChart")
        self.points: dict[str, list[tuple[int, float]]] = {key: [] for key, _, _ in SERIES}
        self.total_iterations = 1
        self._dirty = False
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(CHART_REFRESH_MS)
        self._refresh.timeout.connect(self._repaint_if_dirty)
        self.setMinimumSize(QSize(220, 72))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip(
            "Loss terms (log scale) as the picture is optimised: 'style' falls as the painting takes on "
            "the style, 'content' rises a little as it departs from the photo. A flat total means more "
            "iterations will change little."
        )

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, 84)

    def _repaint_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self.update()

    def flush(self) -> None:
        """Show every point now (at the end of a run)."""
        self._refresh.stop()
        self._repaint_if_dirty()

    def clear(self, total_iterations: int = 1) -> None:
        for series in self.points.values():
            series.clear()
        self.total_iterations = max(1, total_iterations)
        self.update()

    def add(self, iteration: int, losses: Mapping[str, float]) -> None:
        for key, _, _ in SERIES:
            value = losses.get(key)
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            series = self.points[key]
            series.append((iteration, math.log10(value)))
            if len(series) > MAX_POINTS:
                # Keep the shape with bounded cost: drop every other point of the older half.
                half = len(series) // 2
                series[:half] = series[:half:2]
        self._dirty = True
        if not self._refresh.isActive():
            self._refresh.start()

    def legend_rows(self, advance: Callable[[str], int], room: float) -> list[list[tuple[str, QColor, str]]]:
        """The legend's entries (key, colour, text) in rows that fit ``room`` pixels.

        With values when they fit on one row, else the names alone on one row, else the names on
        as many rows as they need: a term's name is never cut off.
        """

        def label(key: str, name: str, with_value: bool) -> str:
            series = self.points[key]
            return f"{name} {format_number(10 ** series[-1][1], 3)}" if with_value and series else name

        def width(entries: list[tuple[str, QColor, str]]) -> float:
            return sum(advance(text) + LEGEND_GAP for _, _, text in entries) - LEGEND_GAP + 14

        for with_values in ((True, True, True, True), (True, False, False, False), (False,) * 4):
            entries = [
                (key, colour, label(key, name, wv))
                for (key, name, colour), wv in zip(SERIES, with_values, strict=True)
            ]
            if width(entries) <= room:
                return [entries]
        rows: list[list[tuple[str, QColor, str]]] = [[]]
        for entry in entries:
            if rows[-1] and width([*rows[-1], entry]) > room:
                rows.append([])
            rows[-1].append(entry)
        return rows

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QPen(palette.mid().color(), 1))
        painter.setBrush(palette.base().color())
        painter.drawRoundedRect(frame, 4, 4)
        metrics = painter.fontMetrics()
        rows = self.legend_rows(metrics.horizontalAdvance, frame.width() - 16)
        line_height = metrics.height() + 2
        legend_height = line_height * len(rows)
        plot = frame.adjusted(6, 4, -6, -legend_height - 2)

        values = [v for series in self.points.values() for _, v in series]
        # The first iterations swing widely; scaling to them would flatten everything after.
        settled = [v for series in self.points.values() for _, v in series[len(series) // 10 :]]
        if not values:
            painter.setPen(palette.placeholderText().color())
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Loss chart appears during a run")
        else:
            low, high = min(settled or values), max(settled or values)
            if high - low < 1e-6:
                low, high = low - 0.5, high + 0.5
            span_x = max(1, self.total_iterations - 1)
            # Faint decade lines give the log scale a sense of proportion.
            painter.setPen(QPen(QColor(255, 255, 255, 22), 1))
            for decade in range(math.floor(low), math.ceil(high) + 1):
                y = plot.bottom() - (decade - low) / (high - low) * plot.height()
                if plot.top() <= y <= plot.bottom():
                    painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            for key, _, colour in SERIES:
                series = self.points[key]
                if not series:
                    continue
                path = QPainterPath()
                for index, (iteration, value) in enumerate(series):
                    x = plot.left() + (iteration - 1) / span_x * plot.width()
                    y = plot.bottom() - (value - low) / (high - low) * plot.height()
                    y = min(plot.bottom(), max(plot.top(), y))
                    if index == 0:
                        path.moveTo(x, y)
                    else:
                        path.lineTo(x, y)
                painter.setPen(QPen(colour, 1.6 if key == "total" else 1.2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)

        # Legend along the bottom edge: every term's swatch and name, never cut off (see legend_rows).
        y = frame.bottom() - legend_height + line_height / 2 - 1
        for row in rows:
            x = frame.left() + 8
            for key, colour, text in row:
                painter.setPen(QPen(colour, 2))
                painter.drawLine(QPointF(x, y), QPointF(x + 10, y))
                painter.setPen(
                    palette.text().color() if self.points[key] else palette.placeholderText().color()
                )
                painter.drawText(QPointF(x + 14, y + metrics.ascent() / 2 - 1), text)
                x += LEGEND_GAP + metrics.horizontalAdvance(text)
            y += line_height
        painter.end()


class ProgressPanel(QWidget):
    # One line for the pane's header, so a folded Progress pane still says how far the run is.
    summaryChanged = Signal(str)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ProgressPanel")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("Ready")
        self.bar.setToolTip("How far the current run is: iteration out of the total")
        self.stats = QLabel("")
        self.stats.setObjectName("Caption")
        self.stats.setToolTip("Speed in iterations per second, time so far and the estimated time left")
        self.stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status = QLabel("")
        self.status.setObjectName("Caption")
        self.status.setWordWrap(True)
        self.status.setToolTip("What the engine is doing")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.chart = LossChart()

        left = QVBoxLayout()
        left.setSpacing(4)
        left.addWidget(self.bar)
        left.addWidget(self.stats)
        left.addWidget(self.status)
        left.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(10)
        # Half the width for the chart: at 1280 px a narrower one cut its legend short.
        layout.addLayout(left, 1)
        layout.addWidget(self.chart, 1)
        self._iteration = 0
        self._total = 0
        self._elapsed = 0.0

    def start(self, total: int, text: str = "Preparing…") -> None:
        self._iteration, self._total, self._elapsed = 0, total, 0.0
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(0)
        self.bar.setFormat(f"0 / {total}")
        self.stats.setText(text)
        self.status.setText("")
        self.chart.clear(total)
        self.summaryChanged.emit(f"0 / {total} · {text}")

    def show_progress(self, record: Progress) -> None:
        iteration, total, elapsed = record.iteration, record.total, float(record.elapsed)
        self._iteration, self._total, self._elapsed = iteration, total, elapsed
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(iteration)
        self.bar.setFormat(f"Iteration {iteration} / {total}")
        rate = iteration / elapsed if elapsed > 0 else 0.0
        remaining = (total - iteration) / rate if rate > 0 else math.inf
        parts = [
            f"{rate:.2f} it/s" if rate < 10 else f"{rate:.0f} it/s",
            f"{format_duration(elapsed)} elapsed",
        ]
        parts.append(f"{format_duration(remaining)} left")
        if record.levels > 1:
            width, height = record.size
            parts.append(f"level {record.level}/{record.levels} at {width}×{height}")
        self.stats.setText(" · ".join(parts))
        self.summaryChanged.emit(f"{iteration} / {total} · {parts[-2] if record.levels > 1 else parts[-1]}")
        if record.message:
            self.status.setText(record.message)
        self.chart.total_iterations = max(1, total)
        self.chart.add(iteration, record.losses)

    def finish(self, text: str, iteration: int | None = None) -> None:
        self.chart.flush()
        if iteration is not None:
            self.bar.setValue(min(iteration, self.bar.maximum()))
        self.bar.setFormat(text)
        if self._elapsed > 0 and self._iteration > 0:
            rate = self._iteration / self._elapsed
            speed = f"{rate:.2f} it/s" if rate < 10 else f"{rate:.0f} it/s"
            self.stats.setText(f"{speed} · {self._iteration} iterations in {format_duration(self._elapsed)}")
        self.summaryChanged.emit(text)

    def set_status(self, text: str) -> None:
        self.status.setText(text)
