"""Column sets the framework needs, built per replicable type.

A replicable declares its model, then gets its registry model (tracking DB)
and, if it keeps verification state in a table of its own, the state model
(main DB) from these factories, so every type has exactly the same columns,
defaults, limits and indexes as GitLab's template.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, ForeignKey,
                        Index, LargeBinary, SmallInteger, Text, false, literal_column,
                        text)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import BigId
from backend.db.types import NullsFirst, UTCDateTime

FAILURE_LIMIT = 255


def verification_state_columns(table: str) -> dict:
    """The seven verification columns of a primary model or state table."""
    return {
        "verification_started_at": Column(UTCDateTime),
        "verification_retry_at": Column(UTCDateTime),
        "verified_at": Column(UTCDateTime),
        "verification_state": Column(SmallInteger, nullable=False, default=0,
                                     server_default=text("0")),
        "verification_retry_count": Column(SmallInteger, nullable=False, default=0,
                                           server_default=text("0")),
        "verification_checksum": Column(LargeBinary),
        "verification_failure": Column(Text),
    }


def verification_state_indexes(table: str) -> tuple:
    state = literal_column("verification_state")
    return (
        CheckConstraint(f"length(verification_failure) <= {FAILURE_LIMIT}",
                        name=f"check_{table}_verification_failure_length"),
        Index(f"index_{table}_on_verification_state", "verification_state"),
        Index(f"index_{table}_failed_verification", NullsFirst("verification_retry_at"),
              postgresql_where=state == 3, sqlite_where=state == 3),
        Index(f"index_{table}_needs_verification", "verification_state",
              postgresql_where=state.in_([0, 3]), sqlite_where=state.in_([0, 3])),
        Index(f"index_{table}_pending_verification", NullsFirst("verified_at"),
              postgresql_where=state == 0, sqlite_where=state == 0),
    )


def make_state_model(base, replicable_name: str, model_table: str):
    """Option 2 of the template: a `<name>_states` table keyed by the model id."""
    table = f"{replicable_name}_states"
    fk = f"{replicable_name}_id"
    attrs = {
        "__tablename__": table,
        "__table_args__": verification_state_indexes(table),
        fk: Column(BigInteger, ForeignKey(f"{model_table}.id", ondelete="CASCADE"),
                   primary_key=True, autoincrement=False),
        **verification_state_columns(table),
    }
    class_name = "".join(part.title() for part in replicable_name.split("_")) + "State"
    return type(class_name, (base,), attrs)


def make_registry_model(base, replicable_name: str):
    """The `<name>_registry` table, column for column as GitLab's template."""
    table = f"{replicable_name}_registry"
    fk = f"{replicable_name}_id"
    state = literal_column("state")
    vstate = literal_column("verification_state")
    attrs = {
        "__tablename__": table,
        "__table_args__": (
            CheckConstraint(f"length(last_sync_failure) <= {FAILURE_LIMIT}",
                            name=f"check_{table}_last_sync_failure_length"),
            CheckConstraint(f"length(verification_failure) <= {FAILURE_LIMIT}",
                            name=f"check_{table}_verification_failure_length"),
            Index(f"index_{table}_on_{fk}", fk, unique=True),
            Index(f"index_{table}_on_state", "state"),
            Index(f"index_{table}_on_state_and_verification_state", "state",
                  "verification_state"),
            Index(f"{table}_failed_verification",
                  NullsFirst("verification_retry_at"),
                  postgresql_where=(state == 2) & (vstate == 3),
                  sqlite_where=(state == 2) & (vstate == 3)),
            Index(f"{table}_needs_verification", "verification_state",
                  postgresql_where=(state == 2) & vstate.in_([0, 3]),
                  sqlite_where=(state == 2) & vstate.in_([0, 3])),
            Index(f"{table}_pending_verification",
                  NullsFirst("verified_at"), "id",
                  postgresql_where=(state == 2) & (vstate == 0),
                  sqlite_where=(state == 2) & (vstate == 0)),
            # Claims read these in their ORDER BY (migration 0005).
            Index(f"index_{table}_pending_sync", "id",
                  postgresql_where=state == 0, sqlite_where=state == 0),
            Index(f"index_{table}_failed_sync", NullsFirst("retry_at"), "id",
                  postgresql_where=state == 3, sqlite_where=state == 3),
        ),
        "id": Column(BigId, primary_key=True),
        fk: Column(BigInteger, nullable=False),
        "created_at": Column(UTCDateTime, nullable=False),
        "last_synced_at": Column(UTCDateTime),
        "retry_at": Column(UTCDateTime),
        "verified_at": Column(UTCDateTime),
        "verification_started_at": Column(UTCDateTime),
        "verification_retry_at": Column(UTCDateTime),
        "state": Column(SmallInteger, nullable=False, default=0, server_default=text("0")),
        "verification_state": Column(SmallInteger, nullable=False, default=0,
                                     server_default=text("0")),
        "retry_count": Column(SmallInteger, nullable=False, default=0, server_default=text("0")),
        "verification_retry_count": Column(SmallInteger, nullable=False, default=0,
                                           server_default=text("0")),
        "checksum_mismatch": Column(Boolean, nullable=False, default=False,
                                    server_default=false()),
        "verification_checksum": Column(LargeBinary),
        "verification_checksum_mismatched": Column(LargeBinary),
        "verification_failure": Column(Text),
        "last_sync_failure": Column(Text),
    }
    class_name = "".join(part.title() for part in replicable_name.split("_")) + "Registry"
    return type(class_name, (base,), attrs)


class BlobModelColumns:
    """Columns every blob model has: owner project, stored file, size."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id"), index=True)
    file: Mapped[str] = mapped_column(Text)
    file_store: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    size: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
