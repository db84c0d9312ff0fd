"""Retry backoff, as GitLab's Delay module computes it.

delay(n) = n**4 + 15 + r*(n+1) seconds with r a random integer in 0..29;
the next retry is never later than cap + delay(1) from now.
"""
from __future__ import annotations

import datetime as dt
import random

from backend.framework.clock import utcnow

DEFAULT_CAP = dt.timedelta(hours=1)
MISSING_ON_PRIMARY_CAP = dt.timedelta(hours=4)


def delay_seconds(retry_count: int, rng: random.Random | None = None) -> int:
    n = max(int(retry_count), 0)
    r = (rng or random).randint(0, 29)
    return n ** 4 + 15 + r * (n + 1)


def next_retry_time(
    retry_count: int,
    cap: dt.timedelta = DEFAULT_CAP,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> dt.datetime:
    now = now or utcnow()
    # Exponents grow fast; past the cap the exact delay does not matter.
    n = min(int(retry_count), 100)
    proposed = dt.timedelta(seconds=delay_seconds(n, rng))
    ceiling = cap + dt.timedelta(seconds=delay_seconds(1, rng))
    return now + min(proposed, ceiling)
