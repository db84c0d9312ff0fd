"""How high a rate chart's y axis goes, so that a burst does not flatten
everything else.

A secondary that starts with a backlog syncs 1,750 files in its first
minute and a handful a minute after that; scaled to the burst, the rest is
a flat line on zero. The scale is therefore set by the bulk of the points:
when the highest tenth of them (at least one point) stands more than
OUTLIER_FACTOR times above the highest of the others, the axis stops a
little above the others and the points above it are marked as off the
scale (their values stay on hover). Steady or evenly bursty rates are not
cut.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from widgets.chart_axes import nice_step

OUTLIER_FACTOR = 3.0
HEADROOM = 1.1  # a cut scale leaves room above the highest point it shows


class Scale(NamedTuple):
    top: float      # the axis' highest tick
    cut: bool       # True: some points are higher than `top`
    peak: float     # the highest value, shown or not


def nice_ceiling(value: float, least: float = 1.0) -> float:
    """The smallest whole multiple of a round step (1, 2 or 5 × 10^k, about
    a quarter of `value`) at or above `value`: where the axis' top tick goes."""
    if value <= least:
        return least
    step = nice_step(value / 4, least=1)
    return math.ceil(value / step - 1e-9) * step


def rate_scale(values: list[float], least: float = 1.0) -> Scale:
    """The scale for all the series of one rate chart together."""
    positive = sorted(v for v in values if v is not None and v > 0)
    if not positive:
        return Scale(least, False, 0.0)
    peak = positive[-1]
    outliers = max(1, len(positive) // 10)
    rest = positive[:-outliers]
    if rest and peak > OUTLIER_FACTOR * rest[-1]:
        shown = max(v for v in positive if v <= OUTLIER_FACTOR * rest[-1])
        return Scale(nice_ceiling(shown * HEADROOM, least), True, peak)
    return Scale(nice_ceiling(peak, least), False, peak)
