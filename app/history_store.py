"""History a site does not keep, recorded by the console while it watches.

GitLab keeps no status history: its REST status says only how things stand
now. While the console is connected to such a site, each status it polls is
recorded here, at most once every RECORD_EVERY seconds, in an SQLite file of
the user data folder (`history/<host>-<hash>.db`, one per site URL), so the
charts of synced and verified percentages, throughput and failures work for
GitLab sites and survive restarts. The table and its reading are those of
the engine's own history (`backend.secondary.status_history`), kept for
the same RETENTION.

GitLab reports counts, not the work behind them, so throughput here is the
net change of the counts between two records: more synced registries are
syncs that succeeded, more failed ones syncs that failed. A registry that
fails and is synced again between two records counts once, as synced; the
bytes moved are not known (0).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import urllib.parse

from sqlalchemy import func, select

from backend.db.engine import create_db_engine
from backend.db.tracking_schema import StatusHistory
from backend.framework.clock import utcnow
from backend.secondary import status_history
from backend.workspace import data_dir

RECORD_EVERY = 30.0  # seconds between two records of one site (it polls every 2 s)
COUNTS = ("registry_count", "synced_count", "failed_count", "verification_total_count",
          "verified_count", "verification_failed_count")
# A count that grows between two records is this much work, as a rate.
WORK_OF = {"synced_count": "syncs_succeeded", "failed_count": "syncs_failed",
           "verified_count": "verifications_succeeded",
           "verification_failed_count": "verifications_failed"}


def store_path(url: str):
    """The history file of the site at `url`: readable, and one per URL."""
    host = urllib.parse.urlsplit(url).netloc or "site"
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", host)
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:12]
    return data_dir() / "history" / f"{readable}-{digest}.db"


class HistoryStore:
    def __init__(self, url: str, path=None) -> None:
        self.path = path or store_path(url)
        self.engine = create_db_engine(f"sqlite:///{self.path}")
        StatusHistory.__table__.create(self.engine, checkfirst=True)
        self._lock = threading.Lock()
        self._last: dict[str, tuple[dt.datetime, dict]] = {}  # type -> (at, counts)
        self._load_last()

    def _load_last(self) -> None:
        """The newest record of each type, so work after a restart is
        measured from it rather than from nothing."""
        table = StatusHistory.__table__
        newest = select(func.max(table.c.id)).group_by(table.c.replicable_name)
        with self.engine.connect() as connection:
            rows = connection.execute(
                table.select().where(table.c.id.in_(newest))).mappings().all()
        for row in rows:
            self._last[row["replicable_name"]] = (row["recorded_at"],
                                                  {name: row[name] for name in COUNTS})

    def record(self, status: dict, types, now: dt.datetime | None = None) -> bool:
        """Record the site's status for each type (`plural_name` prefixes its
        fields), unless the last record is younger than RECORD_EVERY; True if
        it was recorded."""
        now = now or utcnow()
        with self._lock:
            last_at = max((at for at, _ in self._last.values()), default=None)
            if last_at is not None and (now - last_at).total_seconds() < RECORD_EVERY:
                return False
            for kind in types:
                counts = {name: status.get(f"{kind.plural_name}_{name}") for name in COUNTS}
                if counts["registry_count"] is None:
                    continue  # the site does not count this type (a primary, or disabled)
                counts = {name: int(value or 0) for name, value in counts.items()}
                before = self._last.get(kind.replicable_name)
                interval = (now - before[0]).total_seconds() if before else RECORD_EVERY
                work = {WORK_OF[name]: max(0, counts[name] - before[1][name])
                        for name in WORK_OF} if before else {}
                status_history.record(self.engine, kind.replicable_name, counts, work,
                                      interval, now=now)
                self._last[kind.replicable_name] = (now, counts)
            status_history.prune(self.engine)
        return True

    def read(self, replicable_name: str, start: dt.datetime, end: dt.datetime,
             buckets: int) -> list[dict]:
        points = status_history.read(self.engine, replicable_name, start, end, buckets)
        for point in points:
            point["bytes_per_second"] = None  # not reported: never shown as 0 B/s
        return points

    def close(self) -> None:
        self.engine.dispose()
