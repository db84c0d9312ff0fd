"""Axes of the history charts: a time axis that spans exactly the chosen
range (labels relative to its end, "5 min ago", or absolute local times for
print) and value axes that never go below zero, never show an SI prefix
such as "(x0.001)" and put their ticks on round numbers only."""
from __future__ import annotations

import datetime as dt
import math

import pyqtgraph as pg

MINUTE, HOUR, DAY = 60, 3600, 86400
# Spacings a time axis may use, shortest first.
TIME_STEPS = (10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE,
              30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY,
              5 * DAY, 7 * DAY, 14 * DAY)
LABEL_PIXELS = 75  # room one time label needs


def zone_name(zone: dt.tzinfo | None = None, at: dt.datetime | None = None) -> str:
    """"UTC" or "UTC+01:00": the zone times are shown in (the local one by default)."""
    moment = (at or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    offset = moment.utcoffset() or dt.timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(epoch: float, zone: dt.tzinfo | None = None, seconds: bool = False) -> str:
    """"2026-06-01 14:02" in the zone (local by default), without its name."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def ago(seconds: float) -> str:
    """"now", "45 s ago", "5 min ago", "3 h ago", "2 d ago" (whole units, or
    "1 h 30 min ago" when a tick falls between them)."""
    seconds = int(round(seconds))
    if seconds <= 0:
        return "now"
    if seconds < MINUTE:
        return f"{seconds} s ago"
    if seconds % DAY == 0:
        return f"{seconds // DAY} d ago"
    if seconds >= DAY and seconds % HOUR == 0:
        return f"{seconds // DAY} d {seconds % DAY // HOUR} h ago"
    if seconds % HOUR == 0:
        return f"{seconds // HOUR} h ago"
    if seconds > HOUR:
        return f"{seconds // HOUR} h {seconds % HOUR // MINUTE} min ago"
    return f"{seconds // MINUTE} min ago"


def time_step(span: float, pixels: float) -> int:
    """The shortest spacing that leaves each label room."""
    most = max(2, int(pixels // LABEL_PIXELS))
    for step in TIME_STEPS:
        if span / step <= most:
            return step
    return TIME_STEPS[-1]


class _EdgeLabels:
    """Labels on the ends of an axis (the zero, "now") are drawn too:
    pyqtgraph drops a label reaching past the axis when the grid is on."""

    OVERHANG = 0

    def boundingRect(self):  # noqa: N802 (Qt's name)
        m = self.OVERHANG
        rect = super().boundingRect()
        return rect.adjusted(-m, 0, m, 0) if self.orientation in ("top", "bottom") \
            else rect.adjusted(0, -m, 0, m)


class TimeAxis(_EdgeLabels, pg.AxisItem):
    """Epoch seconds. `relative`: ticks counted back from the range's end
    ("now", "10 min ago"); otherwise local clock times on round boundaries
    ("14:00", midnight as "1 Jun"). Its label names the zone."""

    OVERHANG = 40

    def __init__(self, relative: bool = True, zone: dt.tzinfo | None = None, **kwargs) -> None:
        super().__init__("bottom", **kwargs)
        self.relative = relative
        self.zone = zone
        self.end = 0.0
        self.enableAutoSIPrefix(False)

    def set_end(self, end: float) -> None:
        """The time "now" is on a relative axis: the end of the range."""
        self.end = end
        zone = zone_name(self.zone, dt.datetime.fromtimestamp(end, dt.timezone.utc))
        if self.relative:
            self.setLabel(f"time before now (now: {local_time(end, self.zone)[11:]}, {zone})")
        else:
            self.setLabel(f"time ({zone})")

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        span = maxVal - minVal
        if span <= 0 or not math.isfinite(span):
            return []
        step = time_step(span, size)
        if self.relative:
            count = int(math.floor((self.end - minVal) / step + 1e-9))
            values = [self.end - k * step for k in range(count + 1)
                      if minVal - 1e-6 <= self.end - k * step <= maxVal + 1e-6]
        else:
            offset = self._offset(minVal)
            first = math.ceil((minVal + offset) / step) * step - offset
            values = [first + k * step for k in range(int((maxVal - first) // step) + 1)]
        return [(step, sorted(values))]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.relative:
            return [ago(self.end - value) for value in values]
        labels = []
        for value in values:
            moment = dt.datetime.fromtimestamp(value, dt.timezone.utc).astimezone(self.zone)
            midnight = (moment.hour, moment.minute) == (0, 0)
            labels.append(f"{moment.day} {moment:%b}" if midnight or spacing >= DAY
                          else f"{moment:%H:%M}")
        return labels

    def _offset(self, epoch: float) -> float:
        moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).astimezone(self.zone)
        return (moment.utcoffset() or dt.timedelta(0)).total_seconds()


# --- values -------------------------------------------------------------------------

BYTE_UNITS = ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1, "B/s"))


def nice_step(rough: float, least: float = 0.0) -> float:
    """1, 2 or 5 times a power of ten, at least `rough` (and `least`)."""
    rough = max(rough, least, 1e-12)
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * power >= rough - 1e-12:
            return max(factor * power, least)
    return max(10 * power, least)


def byte_unit(top: float) -> tuple[float, str]:
    """(divisor, "MB/s") for an axis reaching `top` bytes per second."""
    for divisor, name in BYTE_UNITS:
        if top >= divisor:
            return divisor, name
    return 1, "B/s"


def format_bytes_rate(value: float) -> str:
    divisor, name = byte_unit(value)
    number = value / divisor
    whole = divisor == 1 or number >= 100 or number == int(number)
    return f"{number:,.0f} {name}" if whole else f"{number:,.1f} {name}"


class ValueAxis(_EdgeLabels, pg.AxisItem):
    """A y axis from 0 to `top`: "percent" (0-100 in steps of 25), "count"
    (whole numbers, thousands separated) or "bytes" (whole numbers of the
    unit its label names: "MB/s")."""

    TICKS = 4  # about this many steps from 0 to the top
    OVERHANG = 10

    def __init__(self, kind: str, **kwargs) -> None:
        super().__init__("left", **kwargs)
        if kind not in ("percent", "count", "bytes"):
            raise ValueError(f"unknown axis kind {kind!r}")
        self.kind = kind
        self.top = 100.0 if kind == "percent" else 1.0
        self.divisor = 1.0
        self.enableAutoSIPrefix(False)

    def set_top(self, top: float) -> None:
        """Ticks go from 0 to `top` only (the view may leave room above it)."""
        self.top = 100.0 if self.kind == "percent" else max(float(top), 1.0)
        if self.kind == "bytes":
            self.divisor, unit = byte_unit(self.top)
            self.setLabel(unit)
        self.picture = None
        self.update()

    def step(self) -> float:
        if self.kind == "percent":
            return 25.0
        if self.kind == "bytes":
            return nice_step(self.top / self.divisor / self.TICKS, least=1) * self.divisor
        return nice_step(self.top / self.TICKS, least=1)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802
        step = self.step()
        count = int(math.floor(self.top / step + 1e-9))
        return [(step, [k * step for k in range(count + 1)
                        if max(minVal, 0) - 1e-9 <= k * step <= maxVal + 1e-9])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [f"{round(value / self.divisor):,}" for value in values]
