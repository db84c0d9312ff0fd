"""A GitLab Geo secondary's tracking database, read and changed directly.

GitLab keeps a secondary's registries in a PostgreSQL database of its own
(`ee/db/geo/structure.sql`): one `<type>_registry` table per replicable
type. Its tables are found in the catalog, never listed here: a table is a
registry of GitLab's self-service framework when it has the framework's
columns (`FRAMEWORK_COLUMNS`) with integer states. Each becomes a
`GitLabRegistry`, shaped as this product's replicators are where the
backend's registry queries and bulk actions read them, so browsing a
million rows, counting, failure groups and batched resync and reverify are
the ones the console uses for its own tracking database.

GitLab's older tables differ, and each is handled:

- `file_registry` holds uploads, keyed by `file_id`;
- `job_artifact_registry` names its model `artifact_id`;
- `project_repository_registry` keys by `project_id`;
- `lfs_object_registry` has extra columns (`bytes`, `success`, `sha256`),
  not read;
- some timestamps are `without time zone` (GitLab writes UTC there) and are
  read as UTC;
- checksums are `bytea` of the SHA-256's bytes and are shown as hex;
- a table whose `state` is text (`container_repository_registry` while
  GitLab migrates it, with `state_for_type_change`) is left out, with that
  reason, rather than read with guessed values.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (BigInteger, Boolean, Column, Integer, LargeBinary, MetaData,
                        SmallInteger, Table, Text, TypeDecorator, cast, false, inspect, null,
                        select)
from sqlalchemy.types import Integer as IntegerType

from backend.db.types import UTCDateTime
from backend.framework.replicable_names import camel, gitlab_type
from backend.framework.replicator import ReplicableType

FRAMEWORK_COLUMNS = (
    "id", "created_at", "state", "retry_count", "retry_at", "last_synced_at",
    "last_sync_failure", "verification_state", "verified_at", "verification_started_at",
    "verification_retry_at", "verification_retry_count", "verification_failure",
    "verification_checksum", "verification_checksum_mismatched", "checksum_mismatch")
OPTIONAL_COLUMNS = ("missing_on_primary",)
# Tables whose name or model key is not `<type>_registry` / `<type>_id`.
TYPE_OF_TABLE = {"file_registry": "upload"}
MODEL_KEY = {"file_registry": "file_id", "job_artifact_registry": "artifact_id",
             "project_repository_registry": "project_id"}
DETAIL_COLUMNS = (("file_name", Text), ("size", BigInteger), ("file_store", SmallInteger),
                  ("project_id", BigInteger), ("project_path", Text), ("shard", Text),
                  ("primary_checksum", Text))


class GitLabChecksum(TypeDecorator):
    """GitLab's `sha_attribute`: the checksum's bytes in a bytea, read as hex."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return bytes.fromhex(value) if isinstance(value, str) else value

    def process_result_value(self, value, dialect):
        return bytes(value).hex() if value is not None else None


@dataclass(frozen=True)
class LeftOut:
    """A `…_registry` table that is not read, and why (shown to the administrator)."""
    table: str
    reason: str


class GitLabRegistry:
    """One registry table of a GitLab tracking database, with the names and
    tables the backend's registry queries ask a replicator for."""

    def __init__(self, table: Table, kind: ReplicableType) -> None:
        self.table = table
        self.kind = kind
        self.replicable_name = kind.replicable_name
        self.plural_name = kind.plural_name
        self.title = kind.title
        self.title_plural = kind.title_plural
        self.registry_fk = kind.registry_fk
        self.graphql_name = kind.graphql_name
        # GitLab keeps no file names, sizes or projects on a secondary: an
        # empty relation where Geo Console's details table would be, so a
        # page joins nothing and every detail reads None.
        self._details = select(
            cast(null(), BigInteger).label(kind.registry_fk),
            *[cast(null(), kind_).label(name) for name, kind_ in DETAIL_COLUMNS]
        ).where(false()).subquery(f"{table.name}_no_details")

    def registry_table(self) -> Table:
        return self.table

    def details_table(self):
        return self._details

    def describe(self) -> ReplicableType:
        return self.kind


def discover(engine) -> tuple[list[GitLabRegistry], list[LeftOut]]:
    """The registry tables of the database, and those left out with why."""
    inspector = inspect(engine)
    found, left_out = [], []
    for name in sorted(inspector.get_table_names()):
        if not name.endswith("_registry"):
            continue
        columns = {column["name"]: column for column in inspector.get_columns(name)}
        registry, reason = _registry(name, columns)
        if registry is None:
            left_out.append(LeftOut(name, reason))
        else:
            found.append(registry)
    return found, left_out


def _registry(name: str, columns: dict) -> tuple[GitLabRegistry | None, str]:
    missing = [column for column in FRAMEWORK_COLUMNS if column not in columns]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                          else "")
        return None, f"not a registry of GitLab's self-service framework (no {shown})"
    for state in ("state", "verification_state"):
        if not isinstance(columns[state]["type"], IntegerType):
            return None, (f"its {state} is text, not GitLab's numbered states (a migration "
                          "GitLab has not finished); left out rather than read by guesswork")
    replicable = TYPE_OF_TABLE.get(name, name.removesuffix("_registry"))
    fk = MODEL_KEY.get(name, f"{replicable}_id")
    if fk not in columns:
        return None, f"it names its model by no {fk} column"
    table = Table(name, MetaData(), *[
        Column(column, _type_of(column, columns[column]["type"]), primary_key=column == "id")
        for column in (*FRAMEWORK_COLUMNS, *OPTIONAL_COLUMNS, fk) if column in columns])
    return GitLabRegistry(table, gitlab_type(camel(replicable), fk)), ""


def _type_of(column: str, found):
    """How a column is read: times as UTC, checksums as hex, numbers and
    text as they are."""
    if column.endswith("_at"):
        return UTCDateTime
    if column in ("verification_checksum", "verification_checksum_mismatched"):
        return GitLabChecksum
    if column in ("checksum_mismatch", "missing_on_primary"):
        return Boolean
    if column in ("last_sync_failure", "verification_failure"):
        return Text
    return BigInteger if isinstance(found, IntegerType) else Integer
