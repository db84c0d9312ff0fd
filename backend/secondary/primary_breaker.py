"""A circuit breaker in front of the primary, on the sync workers' loop.

Without it, a primary down for five minutes failed every registry the
workers tried, each backed off on its own (up to its fourth retry), and
full sync came back only seven minutes after the primary did. Now:

  - a download that fails as an outage would (no connection, a reset, a
    time-out, a truncated body, an HTTP 5xx) asks the breaker whether the
    primary is down. Failures at the same moment share one probe, a small
    authenticated request (`BlobClient.probe`). If the primary answers, the
    failure is the registry's own and is recorded with its backoff;
  - if not, the breaker opens: the attempt does not count (the registry
    goes back to what its claim found), the scheduler claims no more syncs,
    workers hold the syncs already claimed, and the primary is probed every
    PROBE_INTERVAL. The first answer closes the breaker and every held and
    pending sync goes at once.
Verifications read only local replicas and go on meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0  # seconds between probes while the primary is down
HOLD_CHECK = 0.25     # how often a held worker looks whether the engine stops


class PrimaryBreaker:
    def __init__(self, probe: Callable[[], Awaitable[None]], *,
                 on_open: Callable[[str], None], on_close: Callable[[float], None],
                 interval: float = PROBE_INTERVAL) -> None:
        """`probe()` raises when the primary does not answer; `on_open(reason)`
        and `on_close(seconds down)` run on the loop."""
        self.probe = probe
        self.on_open = on_open
        self.on_close = on_close
        self.interval = interval
        self.is_open = False
        self._opened_at = 0.0
        self._checking: asyncio.Future | None = None
        self._prober: asyncio.Task | None = None
        self._closed: asyncio.Event | None = None

    async def outage_confirmed(self, reason: str) -> bool:
        """A download failed with `reason`, as an outage would: True if the
        primary is down (the failure does not count), False if it answers."""
        if self.is_open:
            return True
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._answers())
        if await asyncio.shield(self._checking):
            return False
        self._open(reason)
        return True

    async def wait_until_closed(self, stopping: Callable[[], bool]) -> bool:
        """Hold a worker while the breaker is open; False if the engine
        stops meanwhile."""
        while self.is_open and not stopping():
            try:
                await asyncio.wait_for(self._closed_event().wait(), HOLD_CHECK)
            except asyncio.TimeoutError:
                pass
        return not stopping()

    def close(self) -> None:
        """The loop is ending: stop probing."""
        if self._prober is not None:
            self._prober.cancel()
            self._prober = None

    # --- on the loop ------------------------------------------------------------

    def _open(self, reason: str) -> None:
        if self.is_open:
            return
        self.is_open = True
        self._opened_at = time.monotonic()
        self._closed_event().clear()
        log.warning("the primary cannot be reached (%s): syncs wait, probing every %g s",
                    reason, self.interval)
        self.on_open(reason)
        self._prober = asyncio.ensure_future(self._probe_until_answered())

    async def _probe_until_answered(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if await self._answers():
                break
        down = time.monotonic() - self._opened_at
        self.is_open = False
        self._prober = None
        self._closed_event().set()
        log.warning("the primary answers again after %.0f s: syncs resume", down)
        self.on_close(down)

    async def _answers(self) -> bool:
        """An answer below 500 counts: a primary refusing our credentials is
        up, and the registries' failures say why."""
        try:
            await self.probe()
        except PrimaryUnreachable:
            return False
        except GeoApiError as exc:
            return exc.status < 500
        return True

    def _closed_event(self) -> asyncio.Event:
        if self._closed is None:
            self._closed = asyncio.Event()
            self._closed.set()
        return self._closed
