"""Engine heartbeats and the recovery of a dead engine's claims.

Every engine records when it started and renews `seen_at` while it runs. A
claim carries its start time (`last_synced_at` for a sync,
`verification_started_at` for a verification). A claim older than the
start of every live engine cannot belong to any of them: its engine died
(killed, crashed, machine lost), and the row is handed back at once rather
than after the 8-hour timeout.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.db.engine import database_time, is_postgresql, writing
from backend.db.tracking_schema import EngineHeartbeat
from backend.framework.clock import clock, utcnow
from backend.secondary.registry_claims import RegistryClaims

# Engines beat every BEAT_INTERVAL on a thread of their own (paused or
# not); one not renewed for LIVENESS is a dead engine's. An engine of this
# host whose process is gone is dead at once.
BEAT_INTERVAL = 5.0
LIVENESS = dt.timedelta(seconds=20)
SKEW_WARNING = dt.timedelta(seconds=5)  # a machine clock further off is logged
log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, engine, holder: str) -> None:
        self.engine = engine
        self.holder = holder
        self.started_at: dt.datetime | None = None  # the first beat's time
        self._skew_logged = False

    def beat(self) -> None:
        """Follow the database's clock, then renew this engine's beat. The
        first beat is the engine's start: its claims all come after it."""
        self.follow_database_clock()
        if self.started_at is None:
            self.started_at = utcnow()
        table = EngineHeartbeat.__table__
        dialect_insert = pg_insert if is_postgresql(self.engine) else sqlite_insert
        statement = dialect_insert(table).values(holder=self.holder, started_at=self.started_at,
                                                 seen_at=utcnow())
        statement = statement.on_conflict_do_update(
            index_elements=["holder"], set_={"seen_at": statement.excluded.seen_at})
        with writing(self.engine) as connection:
            connection.execute(statement)
            # Forget engines long gone, and those of this host whose process died.
            connection.execute(delete(table).where(table.c.seen_at < utcnow() - LIVENESS * 10))
            holders = connection.execute(select(table.c.holder)).scalars().all()
            dead = [holder for holder in holders if _dead_here(holder)]
            if dead:
                connection.execute(delete(table).where(table.c.holder.in_(dead)))

    def follow_database_clock(self) -> None:
        skew = abs(follow_database_clock(self.engine))
        if skew > SKEW_WARNING and not self._skew_logged:
            log.warning("this machine's clock is %.0f s off the tracking database's; "
                        "the engine keeps the database's time", skew.total_seconds())
        self._skew_logged = skew > SKEW_WARNING

    def stop(self) -> None:
        table = EngineHeartbeat.__table__
        with writing(self.engine) as connection:
            connection.execute(delete(table).where(table.c.holder == self.holder))


def follow_database_clock(engine) -> dt.timedelta:
    """Make this process's clock follow the tracking database's; returns
    how far the machine's clock is off it."""
    with engine.connect() as connection:
        before = time.monotonic()
        now = database_time(connection)
        after = time.monotonic()
    clock.follow(now, (before + after) / 2)
    return clock.machine_offset()


def _dead_here(holder: str) -> bool:
    """`host:pid:...` of this host whose process no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def oldest_live_start(engine) -> dt.datetime | None:
    """The start of the oldest engine that beat within LIVENESS, by the
    database's clock (also when asked from another process: `status`)."""
    follow_database_clock(engine)
    table = EngineHeartbeat.__table__
    with engine.connect() as connection:
        return connection.execute(select(func.min(table.c.started_at)).where(
            table.c.seen_at >= utcnow() - LIVENESS)).scalar()


def recover_orphaned_claims(engine, replicator) -> tuple[int, int]:
    """Hand back syncs and verifications started before any live engine.
    Returns (syncs, verifications)."""
    cutoff = oldest_live_start(engine)
    if cutoff is None:
        return 0, 0
    return RegistryClaims(engine, replicator).release_claims_before(cutoff)
