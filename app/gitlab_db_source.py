"""A GitLab secondary's tracking database as the console's source.

For an administrator who can reach the database (PostgreSQL, GitLab's
`ee/db/geo/structure.sql`) but wants more than GitLab's pages: every
registry table found in it (`backend.gitlab.tracking_db`), browsed, counted,
exported and grouped by failure with the queries of this console's own
tracking database, and resync and reverify done as GitLab's bulk services
do them: state (or verification state) to pending with the retry fields
cleared, at most 1,000 rows a transaction. GitLab's own jobs then do the
work. An action writes to GitLab's database behind GitLab's back, so the
console asks for a confirmation of every one (`confirm_every_action`).

What the database does not hold is not made up: no site health (GitLab
computes it elsewhere), no file names or sizes, no engine. The status
history is recorded while the console watches (`history_store`).
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.history_store import HistoryStore
from app.sources import TrackingDatabaseReads
from backend.db.engine import create_db_engine
from backend.framework.states import SyncState, VerificationState
from backend.gitlab.tracking_db import discover
from backend.secondary.status import percentage

# Sorts the database can answer: GitLab's tables have no file names, sizes
# or projects to sort by.
SORTS = [f"{key}_{way}" for key in ("ID", "MODEL_RECORD_ID", "LAST_SYNCED_AT", "VERIFIED_AT")
         for way in ("ASC", "DESC")]


class GitLabDatabaseError(ValueError):
    """The database cannot be read as a GitLab tracking database; the message says why."""


class GitLabDatabaseSource(TrackingDatabaseReads):
    remote = True
    can_pause = False
    can_act = True
    cannot_act_because = ""
    confirm_every_action = True
    bulk_leased = False  # GitLab keeps its leases in Redis, not in this database

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if not parsed.drivername.startswith("postgresql"):
            raise GitLabDatabaseError("a GitLab tracking database is PostgreSQL: give a "
                                      "postgresql:// URL")
        # GitLab writes UTC into its `timestamp without time zone` columns.
        query = dict(parsed.query)
        query["options"] = (query.get("options", "") + " -c timezone=UTC").strip()
        self.engine = create_db_engine(parsed.set(query=query).render_as_string(
            hide_password=False))
        try:
            registries, self.left_out = discover(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise GitLabDatabaseError(f"cannot read the tracking database at "
                                      f"{_where(parsed)}: {_first_line(exc)}") from None
        if not registries:
            self.engine.dispose()
            raise GitLabDatabaseError(
                f"{_where(parsed)} has no registry tables of GitLab Geo"
                + (" (left out: " + "; ".join(f"{t.table}: {t.reason}"
                                              for t in self.left_out) + ")"
                   if self.left_out else ""))
        self._replicators = {r.replicable_name: r for r in registries}
        self.types = [r.describe() for r in registries]
        self.name = f"GitLab tracking database {_where(parsed)}"
        self.history_store = HistoryStore(f"postgresql://{_where(parsed)}")

    def sorts(self, replicable: str) -> list[str]:
        return SORTS

    def overview(self) -> dict:
        """GitLab's per-type status fields, counted in the database."""
        status = {"name": self.name, "engine_state": "gitlab database", "healthy": True,
                  "health": "The tracking database answers (GitLab's own health checks "
                            "are not in it)",
                  "left_out": [f"{t.table}: {t.reason}" for t in self.left_out]}
        cursor = self._event_cursor()
        status["event_log_text"] = (
            "no event processed yet" if cursor is None else
            f"processed up to event {cursor:,} (the primary's newest is not in this database)")
        for kind in self.types:
            counts = self.state_counts(kind.replicable_name)
            p = kind.plural_name
            total, synced = counts["all"], counts[SyncState.SYNCED.label]
            verified = counts[f"v_{VerificationState.SUCCEEDED.label}"]
            status.update({
                f"{p}_registry_count": total, f"{p}_synced_count": synced,
                f"{p}_failed_count": counts[SyncState.FAILED.label],
                f"{p}_verification_total_count": synced,
                f"{p}_verified_count": verified,
                f"{p}_verification_failed_count": counts[
                    f"v_{VerificationState.FAILED.label}"],
                f"{p}_synced_in_percentage": percentage(synced, total),
                f"{p}_verified_in_percentage": percentage(verified, total)})
        self.history_store.record(status, self.types)
        return status

    def _event_cursor(self) -> int | None:
        """The last event GitLab's log cursor processed (event_log_states)."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT max(event_id) FROM event_log_states")
                                          ).scalar()
        except SQLAlchemyError:
            return None  # a database without GitLab's cursor table

    def sites(self) -> list[dict]:
        return [self.overview()]

    def history(self, replicable: str, start, end, buckets: int) -> list[dict]:
        return self.history_store.read(self.replicator(replicable).replicable_name, start,
                                       end, buckets)

    def rows(self, replicable, selection, sort, offset, limit):
        if sort not in SORTS:
            raise ValueError("GitLab's tracking database keeps no file names, sizes or "
                             "projects to sort by")
        return super().rows(replicable, selection, sort, offset, limit)

    def close(self) -> None:
        self.history_store.close()
        self.engine.dispose()


def _where(url) -> str:
    return f"{url.database}@{url.host or 'localhost'}:{url.port or 5432}"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:200] if text else "the connection failed"

