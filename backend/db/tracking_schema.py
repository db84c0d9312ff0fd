"""A secondary's tracking database, apart from the registries (declared with
their replicables in backend/replicables/)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import BigId, TrackingBase
from backend.db.types import UTCDateTime


class EventLogState(TrackingBase):
    """The event cursor: id of the last primary event log row processed."""

    __tablename__ = "event_log_states"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class StatusHistory(TrackingBase):
    """One status snapshot per replicable type per interval, for the charts."""

    __tablename__ = "status_history"
    __table_args__ = (
        Index("index_status_history_on_replicable_name_and_recorded_at",
              "replicable_name", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    replicable_name: Mapped[str] = mapped_column(String(255))
    fields: Mapped[dict] = mapped_column(JSON)


class EngineLease(TrackingBase):
    """Work only one engine may do at a time (the event log cursor, the
    consistency walk), when several engines share a tracking DB."""

    __tablename__ = "engine_leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
