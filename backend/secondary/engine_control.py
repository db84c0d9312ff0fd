"""What the engine's threads share: stopping, pausing, the last error, and
the loop that keeps claimed work ahead of the workers.

Both pipelines (syncs, verifications) run the same claim loop: one
scheduler thread claims rows in the database whenever half of the
capacity is free (`claimed_work.py`), so that one claim takes many rows and
a worker done with a blob finds the next one claimed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from backend.db.engine import is_unreachable
from backend.framework.clock import utcnow
from backend.secondary.claimed_work import ClaimedWork
from backend.secondary.errors import describe
from backend.secondary.registry_claims import RegistryClaims
from backend.secondary.registry_outcomes import RegistryOutcomes

log = logging.getLogger(__name__)
VERIFICATION_GATHER = 0.5  # seconds to let verifications gather after a short claim


@dataclass(frozen=True)
class TypeRegistry:
    """One type's registry as the pipelines work it: its claims and the
    outcomes that end them."""

    replicator: type
    claims: RegistryClaims
    outcomes: RegistryOutcomes

    @classmethod
    def of(cls, engine, replicator) -> "TypeRegistry":
        return cls(replicator, RegistryClaims(engine, replicator), RegistryOutcomes(replicator))

    @property
    def name(self) -> str:
        return self.replicator.replicable_name


class SyncHolds:
    """Why syncs wait, by cause (`primary_unreachable`, `low_disk`): while
    any is held the sync scheduler claims nothing. Unlike a pause, a hold
    ends by itself when its cause does. Set and read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, float]] = {}  # cause -> (reason, time.time())

    def hold(self, cause: str, reason: str) -> None:
        with self._lock:
            since = self._held.get(cause, (None, time.time()))[1]
            self._held[cause] = (reason, since)

    def release(self, cause: str) -> bool:
        """True if it was held."""
        with self._lock:
            return self._held.pop(cause, None) is not None

    def __bool__(self) -> bool:
        return bool(self._held)

    def __contains__(self, cause: str) -> bool:
        return cause in self._held

    def reasons(self) -> dict[str, dict]:
        """cause -> {"reason", "since" (unix time)}, for the status."""
        with self._lock:
            return {cause: {"reason": reason, "since": since}
                    for cause, (reason, since) in self._held.items()}


class EngineControl:
    def __init__(self, poll_interval: float,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.poll_interval = poll_interval
        self.on_error = on_error
        self.stop = threading.Event()
        self.resumed = threading.Event()
        self.resumed.set()
        self.last_error: str | None = None
        self.sync_holds = SyncHolds()

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    def report(self, where: str, exc: Exception) -> None:
        """One line for the status and the log; repeated errors log once."""
        message = f"{where}: {describe(exc)}".splitlines()[0][:500]
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message
        if self.on_error:
            self.on_error(message)

    def retry_write(self, what: str, write):
        """Write now, retrying while the tracking DB is unreachable. If the
        engine stops meanwhile, the next one recovers the claims from the
        heartbeats."""
        while True:
            try:
                return write()
            except Exception as exc:
                if not is_unreachable(exc) or self.stop.is_set():
                    raise
                self.report(what, exc)
                self.stop.wait(self.poll_interval)

    def claim(self, claims, claim):
        """`claim(now)` with a known token, so that a claim whose answer was
        lost to a broken connection is handed back once the database
        answers (`claims` is the type's RegistryClaims)."""
        now = utcnow()
        try:
            return claim(now)
        except Exception as exc:
            if is_unreachable(exc) and not self.stop.is_set():
                self.retry_write("claim", lambda: claims.release_claims_made_at(now))
            raise

    def claim_loop(self, what: str, work: ClaimedWork, claim,
                   gather_behind: ClaimedWork | None = None,
                   held: Callable[[], bool] = lambda: False) -> None:
        """Claim rows for the workers whenever half the capacity is free;
        `claim(room)` returns (items, units).

        With `gather_behind` (the syncs, for verifications): after a claim
        that found less than there was room for, wait up to
        VERIFICATION_GATHER seconds so that rows becoming ready one by one
        are claimed many at a time rather than in a claim each; but only
        while that work is in flight: once the last sync has finished, its
        verification need not wait.

        While `held()` is true nothing is claimed; it is asked again every
        poll interval, or at once when the work is signalled.
        """
        while not self.stop.is_set():
            self.resumed.wait()
            room = work.wait_for_room(self.stop, self.poll_interval)
            if self.stop.is_set():
                break
            if self.paused:
                continue
            if held():
                work.wait_for_signal(self.poll_interval)
                continue
            try:
                items, units = claim(room)
            except Exception as exc:  # database down: wait, retry
                self.report(what, exc)
                self.stop.wait(self.poll_interval)
                continue
            if units:
                work.add(items, units)
                if gather_behind is not None and units < room:
                    gather_behind.wait_until_empty(self.stop, VERIFICATION_GATHER)
            else:
                work.wait_for_signal(self.poll_interval)
