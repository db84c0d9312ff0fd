"""The primary's main database: namespaces, projects, the Geo event log and
the statuses secondaries report. Replicable models live in
backend/replicables/, one module per type."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import BigId, PrimaryBase
from backend.db.types import UTCDateTime

DEFAULT_SHARD = "default"


class Namespace(PrimaryBase):
    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("namespaces.id"), index=True)


class Project(PrimaryBase):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    namespace_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("namespaces.id"), index=True)
    repository_storage: Mapped[str] = mapped_column(
        String(255), default=DEFAULT_SHARD, server_default=DEFAULT_SHARD, index=True)


class GeoEvent(PrimaryBase):
    __tablename__ = "geo_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    replicable_name: Mapped[str] = mapped_column(String(255))
    event_name: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class GeoEventLog(PrimaryBase):
    __tablename__ = "geo_event_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    geo_event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("geo_events.id", ondelete="CASCADE"), index=True)


class GeoNodeStatus(PrimaryBase):
    """The latest status each secondary reported (GitLab: geo_node_statuses)."""

    __tablename__ = "geo_node_statuses"
    __table_args__ = (Index("index_geo_node_statuses_on_site_name", "site_name", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
