"""The replicable types Geo Console ships, and where every other part of the
product finds them.

Each module here declares one type (its model, registry and replicator);
importing this package registers them all with
`backend.framework.replicator.REPLICATORS`. The engine, APIs, status,
metrics, CLI and console ask `registered()` for the list; nothing else
names a type.
"""
from __future__ import annotations

from backend.framework.replicator import REPLICATORS, Replicator
from backend.replicables import cool_widgets, package_files  # noqa: F401  (they register)


def registered() -> list[type[Replicator]]:
    """Every replicable type, in the order they were declared."""
    return REPLICATORS.all()


def replicator_for(name: str) -> type[Replicator]:
    """The type named `name` (`cool_widget`); KeyError for an unknown name."""
    return REPLICATORS.get(name)


def metadata(which: str):
    """The SQLAlchemy metadata of one database ("primary" or "tracking") with
    every registered type's tables in it: what the migrations must build."""
    from backend.db import primary_schema, tracking_schema  # noqa: F401  (their tables)
    from backend.db.base import PrimaryBase, TrackingBase
    if which not in ("primary", "tracking"):
        raise ValueError(f"unknown database {which!r}")
    return PrimaryBase.metadata if which == "primary" else TrackingBase.metadata
