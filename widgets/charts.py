"""History charts (pyqtgraph) with their legend and value readout as Qt
widgets below the plot, never over it.

A chart spans exactly the range it is given, whatever data there is;
stretches without points stay empty (lines break at gaps). Percentages go
from 0 to 100, rates from 0 to a round top that a burst does not set
(widgets.chart_scale), bytes per second in the unit the axis names.
Hovering shows, for the nearest point, its time with the zone and every
series' value; away from the plot the readout shows the latest point.
"""
from __future__ import annotations

import bisect
import datetime as dt
import html
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets.chart_axes import TimeAxis, ValueAxis, ago, format_bytes_rate, local_time, \
    zone_name
from widgets.chart_scale import Scale, rate_scale

pg.setConfigOptions(antialias=True)

EMPTY_TEXT = "No history in this range yet"
VIEW_HEADROOM = 1.06  # the view reaches a little above the top tick; markers sit there
VIEW_FOOT = 0.02      # and a little below zero, so a line on zero is not cut in half


class Series(NamedTuple):
    name: str            # legend and readout text; the key of set_series' values
    colour: str
    dashed: bool = False
    width: float = 2.0
    label: str = ""      # what the legend and readout call it (the name when empty)

    @property
    def shown(self) -> str:
        return self.label or self.name


def format_value(kind: str, value: float) -> str:
    if kind == "percent":
        return f"{value:.2f} %"  # as given: rounded down at the source, never up here
    if kind == "bytes":
        return format_bytes_rate(value)
    return f"{value:,.0f}/min" if value >= 100 or value == int(value) else f"{value:,.1f}/min"


class HistoryChart(QWidget):
    """One chart: the plot, its legend and a readout line below it."""

    def __init__(self, title: str, kind: str, series: list[Series], unit: str = "",
                 relative: bool = True, zone: dt.tzinfo | None = None, parent=None) -> None:
        super().__init__(parent)
        self.kind, self.series, self.zone = kind, list(series), zone
        self.times: list[float] = []
        self.values: dict[str, list[float]] = {}
        self.start = self.end = 0.0
        self.scale = Scale(100.0 if kind == "percent" else 1.0, False, 0.0)
        self.gap = 0.0
        self.hovered: int | None = None
        self.values_text = ""  # what the readout says, as plain text

        self.time_axis = TimeAxis(relative=relative, zone=zone)
        self.value_axis = ValueAxis("percent" if kind == "percent" else
                                    "bytes" if kind == "bytes" else "count")
        self.plot = pg.PlotWidget(axisItems={"bottom": self.time_axis,
                                             "left": self.value_axis})
        self.plot.setTitle(title)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.plotItem.layout.setContentsMargins(2, 2, 18, 2)  # room for "now"
        self.plot.showGrid(x=True, y=True, alpha=1.0)
        self.plot.plotItem.vb.disableAutoRange()
        if kind == "percent":
            self.plot.setLabel("left", "%")
        elif unit:
            self.plot.setLabel("left", unit)
        self.curves = {}
        for z, item in enumerate(self.series):
            pen = pg.mkPen(item.colour, width=item.width,
                           style=Qt.DashLine if item.dashed else Qt.SolidLine)
            curve = self.plot.plot([], [], name=item.name, pen=pen)
            curve.setZValue(z)
            self.curves[item.name] = curve
        # A point joined to neither neighbour (a lone snapshot) is a dot.
        self.lone_points = pg.ScatterPlotItem(size=6, pen=None)
        self.lone_points.setZValue(len(self.series))
        self.plot.addItem(self.lone_points)
        self.off_scale = pg.ScatterPlotItem(symbol="t1", size=11, pen=None)
        self.off_scale.setZValue(len(self.series) + 1)
        self.plot.addItem(self.off_scale)
        self.cursor = pg.InfiniteLine(angle=90, movable=False)
        self.cursor.hide()
        self.plot.addItem(self.cursor, ignoreBounds=True)
        self.cursor_dots = pg.ScatterPlotItem(size=7)
        self.cursor_dots.setZValue(len(self.series) + 2)
        self.plot.addItem(self.cursor_dots)
        self.empty_text = pg.TextItem(EMPTY_TEXT, anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text, ignoreBounds=True)

        self.legend = QWidget()
        legend_grid = QGridLayout(self.legend)
        legend_grid.setContentsMargins(8, 0, 8, 0)
        legend_grid.setHorizontalSpacing(16)
        legend_grid.setVerticalSpacing(0)
        self.legend_labels: dict[str, QLabel] = {}
        columns = 2 if len(self.series) > 2 else len(self.series)
        for index, item in enumerate(self.series):
            label = QLabel()
            label.setTextFormat(Qt.RichText)
            label.setAccessibleName(f"legend: {item.shown}")
            self.legend_labels[item.name] = label
            legend_grid.addWidget(label, index // columns, index % columns)
        legend_grid.setColumnStretch(columns, 1)
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.RichText)  # a value is never broken over two lines
        self.readout.setAccessibleName("values")
        self.readout.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.hide()
        for label in (self.readout, self.note):
            label.setContentsMargins(8, 0, 8, 0)
            label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.readout)
        layout.addWidget(self.note)
        self.setAutoFillBackground(True)

        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.plot.installEventFilter(self)
        self.set_colours("#ffffff", "#333333", "#d8dbe0")
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        self.set_series([], {}, now - 3600, now)

    # --- what pyqtgraph's PlotWidget offered callers -------------------------------

    @property
    def plotItem(self):  # noqa: N802 (pyqtgraph's name)
        return self.plot.plotItem

    def setTitle(self, title: str) -> None:  # noqa: N802
        self.plot.setTitle(title)

    def backgroundBrush(self):  # noqa: N802
        return self.plot.backgroundBrush()

    # --- data --------------------------------------------------------------------------

    def set_series(self, times: list[float], values: dict[str, list[float]],
                   start: float | None = None, end: float | None = None,
                   empty: str = EMPTY_TEXT) -> None:
        """Points at `times` (epoch seconds) over the range [start, end] (the
        previous range when not given); `empty` is said where there are none."""
        self.empty_text.setText(empty)
        if start is not None and end is not None and end > start:
            self.start, self.end = float(start), float(end)
        self.times = [float(t) for t in times]
        self.values = {item.name: [max(float(v or 0), 0.0) for v in values.get(item.name, [])]
                       for item in self.series}
        self.gap = self._gap_limit()
        connect = self._connections()
        lone = [i for i in range(len(self.times))
                if not connect[i] and (i == 0 or not connect[i - 1])]
        spots = []
        for item in self.series:
            ys = self.values[item.name]
            self.curves[item.name].setData(self.times[:len(ys)], ys,
                                           connect=connect[:len(ys)] if ys else "all")
            spots += [{"pos": (self.times[i], ys[i]), "brush": pg.mkBrush(item.colour),
                       "size": 4 + item.width} for i in lone if i < len(ys)]
        self.lone_points.setData(spots)
        self._apply_scale()
        self.time_axis.set_end(self.end)
        self.plot.setXRange(self.start, self.end, padding=0)
        empty = not self.times
        self.empty_text.setVisible(empty)
        self.empty_text.setPos((self.start + self.end) / 2, self.scale.top * 0.62)
        self._show_values(None)

    def _apply_scale(self) -> None:
        if self.kind == "percent":
            self.scale = Scale(100.0, False, max((max(v, default=0) for v in
                                                  self.values.values()), default=0))
        else:
            everything = [v for vs in self.values.values() for v in vs]
            self.scale = rate_scale(everything)
        top = self.scale.top
        self.value_axis.set_top(top)
        self.plot.setYRange(-top * VIEW_FOOT, top * VIEW_HEADROOM, padding=0)
        spots = []
        higher = 0
        for item in self.series:
            for t, v in zip(self.times, self.values[item.name]):
                if v > top:
                    higher += 1
                    spots.append({"pos": (t, top * (VIEW_HEADROOM + 1) / 2),
                                  "brush": pg.mkBrush(item.colour)})
        self.off_scale.setData(spots)
        self.note.setVisible(bool(higher))
        if higher:
            points = "1 point is" if higher == 1 else f"{higher:,} points are"
            self.note.setText(f"▲ Scale cut at {format_value(self.kind, top)} so the rest "
                              f"can be read: {points} higher, up to "
                              f"{format_value(self.kind, self.scale.peak)}"
                              + (" (hover for values)." if self.time_axis.relative else "."))

    def _gap_limit(self) -> float:
        """Points further apart than this are not joined by a line."""
        width = (self.end - self.start) / 240 if self.end > self.start else 60
        steps = sorted(b - a for a, b in zip(self.times, self.times[1:]))
        typical = steps[len(steps) // 2] if steps else 0
        return max(2.5 * width, 3 * typical)

    def _connections(self):
        joined = [b - a <= self.gap for a, b in zip(self.times, self.times[1:])]
        return np.array(joined + [False], dtype=bool)

    # --- hover ----------------------------------------------------------------------------

    def eventFilter(self, watched, event):  # noqa: N802
        if watched is self.plot and event.type() == QEvent.Leave:
            self._show_values(None)
        return super().eventFilter(watched, event)

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        box = self.plot.plotItem.vb
        if not box.sceneBoundingRect().contains(scene_pos):
            self._show_values(None)
            return
        self.show_values_at(box.mapSceneToView(scene_pos).x())

    def show_values_at(self, time: float) -> None:
        """The readout and the cursor for the point nearest `time`."""
        if not self.times:
            self._show_values(None)
            self._set_readout(f"{self._when(time)}: no data")
            return
        index = bisect.bisect_left(self.times, time)
        nearest = min((i for i in (index - 1, index) if 0 <= i < len(self.times)),
                      key=lambda i: abs(self.times[i] - time))
        if abs(self.times[nearest] - time) > self.gap:
            self._show_values(None)
            self._set_readout(f"{self._when(time)}: no data")
            return
        self._show_values(nearest)

    def _show_values(self, index: int | None) -> None:
        """The readout for the point `index` (hovered), or for the latest one."""
        self.hovered = index
        self.cursor.setVisible(index is not None)
        if not self.times:
            self.cursor_dots.setData([])
            self._set_readout("")
            return
        at = index if index is not None else len(self.times) - 1
        parts = [f"{item.shown} {format_value(self.kind, self.values[item.name][at])}"
                 for item in self.series if at < len(self.values[item.name])]
        if index is None:
            self.cursor_dots.setData([])
            when = self._when(self.times[at])
            latest = f"Latest ({ago(self.end - self.times[at])}, {when})" \
                if self.time_axis.relative else f"Latest ({when})"
            self._set_readout(f"{latest}:", parts)
            return
        t = self.times[at]
        self.cursor.setPos(t)
        top = self.scale.top * (VIEW_HEADROOM + 1) / 2
        self.cursor_dots.setData([{"pos": (t, min(self.values[item.name][at], top)),
                                   "brush": pg.mkBrush(item.colour), "pen": None}
                                  for item in self.series if at < len(self.values[item.name])])
        self._set_readout(f"{self._when(t, seconds=True)}:", parts)

    def _set_readout(self, lead: str, parts: list[str] = ()) -> None:
        self.values_text = " ".join([lead, ", ".join(parts)]) if parts else lead
        # No line break inside one value ("0/min"): non-breaking spaces, word joiners.
        self.readout.setText(html.escape(lead) + " " + ", ".join(
            html.escape(part).replace(" ", "\u00a0").replace("/", "/\u2060")
            for part in parts))

    def _when(self, epoch: float, seconds: bool = False) -> str:
        zone = zone_name(self.zone, dt.datetime.fromtimestamp(epoch, dt.timezone.utc))
        return f"{local_time(epoch, self.zone, seconds)} {zone}"

    # --- colours ----------------------------------------------------------------------------

    def set_colours(self, background: str, foreground: str, grid: str) -> None:
        """The chart's colours (a palette's `chart` table); the legend and
        readout below the plot share its background."""
        self.plot.setBackground(background)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(grid)  # the axis line and, opaque, its grid
            self.plot.getAxis(axis).setTextPen(foreground)
        self.plot.showGrid(x=True, y=True, alpha=1.0)
        title = self.plot.plotItem.titleLabel
        title.setAttr("color", foreground)
        title.setText(title.text)
        self.cursor.setPen(pg.mkPen(foreground, width=1, style=Qt.DotLine))
        self.empty_text.setColor(foreground)
        self.empty_text.fill = pg.mkBrush(background)  # over the grid lines
        palette = self.palette()
        palette.setColor(QPalette.Window, QColor(background))
        palette.setColor(QPalette.WindowText, QColor(foreground))
        self.setPalette(palette)
        for item in self.series:
            swatch = "╍╍╍" if item.dashed else "━━━"
            self.legend_labels[item.name].setText(
                f"<span style='color:{item.colour}; font-weight:bold'>{swatch}</span>"
                f" <span style='color:{foreground}'>{html.escape(item.shown)}</span>")
        for label in (self.readout, self.note):
            label.setStyleSheet(f"color: {foreground}")
