"""Live history charts (pyqtgraph): curves made once and updated in place
with setData, a time axis of epoch seconds."""
from __future__ import annotations

import pyqtgraph as pg

pg.setConfigOptions(antialias=True)


class HistoryChart(pg.PlotWidget):
    """One chart with named curves over time."""

    def __init__(self, title: str, unit: str, series: list[tuple[str, str]],
                 y_range: tuple[float, float] | None = None, parent=None) -> None:
        super().__init__(parent=parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setTitle(title)
        self.setLabel("left", unit)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(10, 10))
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        if y_range:
            self.setYRange(*y_range, padding=0.02)
        self.curves = {}
        for name, colour in series:
            # Small symbols: a range with a single snapshot still shows a point.
            self.curves[name] = self.plot([], [], name=name, pen=pg.mkPen(colour, width=2),
                                          symbol="o", symbolSize=4, symbolBrush=colour,
                                          symbolPen=colour)

    def set_series(self, times: list[float], values: dict[str, list[float]]) -> None:
        for name, curve in self.curves.items():
            curve.setData(times, values.get(name, []))
        if times:
            self.setXRange(times[0], times[-1] if len(times) > 1 else times[0] + 60,
                           padding=0.02)

    def set_colours(self, background: str, foreground: str, grid: str) -> None:
        """The chart's colours (a palette's `chart` table)."""
        self.setBackground(background)
        for axis in ("left", "bottom"):
            self.getAxis(axis).setPen(grid)  # the axis line and, opaque, its grid
            self.getAxis(axis).setTextPen(foreground)
        self.showGrid(x=True, y=True, alpha=1.0)
        self.plotItem.titleLabel.setAttr("color", foreground)
        self.plotItem.titleLabel.setText(self.plotItem.titleLabel.text)
        legend = self.plotItem.legend
        if legend is not None:
            legend.setLabelTextColor(foreground)
