"""A secondary's tracking database, apart from the registries (declared with
their replicables in backend/replicables/)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Float, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import BigId, TrackingBase
from backend.db.types import UTCDateTime


class EventLogState(TrackingBase):
    """The event cursor: id of the last primary event log row processed."""

    __tablename__ = "event_log_states"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class EventLogGap(TrackingBase):
    """An event log id the cursor passed without seeing it (GitLab's
    EventGapTracking keeps these in Redis): an event of a transaction still
    open on the primary when a later one was read, or of one rolled back.
    Looked for again on every poll until found or `seen_at` is too old."""

    __tablename__ = "event_log_gaps"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


# Per snapshot: the status counts at that moment, and the engine's work
# (successes, failures, bytes) since the previous snapshot.
HISTORY_COUNTS = (
    "registry_count", "synced_count", "failed_count", "verification_total_count",
    "verified_count", "verification_failed_count",
    "syncs_succeeded", "syncs_failed", "verifications_succeeded", "verifications_failed",
    "bytes_downloaded",
)


class StatusHistory(TrackingBase):
    """One status snapshot per replicable type per interval, for the charts.

    `recorded_epoch` (whole seconds) lets both databases bucket a time range
    with integer arithmetic.
    """

    __tablename__ = "status_history"
    __table_args__ = (
        Index("index_status_history_on_replicable_name_and_recorded_epoch",
              "replicable_name", "recorded_epoch"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    replicable_name: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_epoch: Mapped[int] = mapped_column(BigInteger)
    interval_seconds: Mapped[float] = mapped_column(Float)


for _name in HISTORY_COUNTS:
    StatusHistory.__table__.append_column(
        Column(_name, BigInteger, nullable=False, default=0, server_default=text("0")))
StatusHistory.__mapper__.add_properties(
    {name: StatusHistory.__table__.c[name] for name in HISTORY_COUNTS})


class EngineLease(TrackingBase):
    """Work only one engine may do at a time (the event log cursor, the
    consistency walk), when several engines share a tracking DB."""

    __tablename__ = "engine_leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class EngineHeartbeat(TrackingBase):
    """Each running engine process: when it started and when it was last seen.

    A claim (a started sync or verification) made before the oldest live
    engine started belongs to an engine that is gone, and is recovered at
    once instead of after the 8-hour timeout.
    """

    __tablename__ = "engine_heartbeats"

    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ReplicaRemoval(TrackingBase):
    """A replica of a deleted record whose file could not be removed.

    The registry goes with its record (GitLab's removal service); the file
    left behind waits here, with why its removal failed and when it is
    tried again (backoff), until a retry removes it
    (`secondary/replica_removals.py`).
    """

    __tablename__ = "replica_removals"
    __table_args__ = (
        Index("index_replica_removals_on_replicable_name_and_model_id",
              "replicable_name", "model_id", unique=True),
        Index("index_replica_removals_on_retry_at", "retry_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    replicable_name: Mapped[str] = mapped_column(String(255))
    model_id: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    retry_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    retry_count: Mapped[int] = mapped_column(SmallInteger, default=0,
                                             server_default=text("0"))
    last_failure: Mapped[str] = mapped_column(String(255))
