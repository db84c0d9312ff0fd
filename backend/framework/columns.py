"""The tables every replicable type has, built from its names: the one place
their shape is written.

A type's declaration (backend/replicables/) gets its models from here: the
blob model on the primary, with its verification state as columns on it
(the template's option 1) or in a `<name>_states` table of its own
(option 2), and its registry on secondaries, with GitLab's columns,
defaults, 255-character limits, unique index and partial indexes. The
migrations build the same tables from the same functions
(`framework/type_migrations.py`), so a type's shape is never restated.

Every builder takes the MetaData to build on: the declarative bases' for
the models, a fresh one for a migration.
"""
from __future__ import annotations

from sqlalchemy import (DDL, BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Index,
                        LargeBinary, MetaData, SmallInteger, Table, Text, event, false,
                        literal_column, text)

from backend.db.base import BigId
from backend.db.types import NullsFirst, UTCDateTime

FAILURE_LIMIT = 255


def registry_table_name(replicable_name: str) -> str:
    return f"{replicable_name}_registry"


def details_table_name(replicable_name: str) -> str:
    return f"{replicable_name}_registry_details"


def state_table_name(replicable_name: str) -> str:
    return f"{replicable_name}_states"


def class_name(replicable_name: str, suffix: str = "") -> str:
    """`cool_widget` -> `CoolWidget<suffix>`."""
    return "".join(part.title() for part in replicable_name.split("_")) + suffix


# --- the primary ----------------------------------------------------------------

def blob_model_table(metadata: MetaData, name: str, *, verification_on_model: bool) -> Table:
    """A blob model on the primary: owner project, stored file (relative path
    or object key), where it is stored (1 local, 2 object storage), size;
    with the verification columns when the type keeps them on the model."""
    columns = [
        Column("id", BigId, primary_key=True),
        Column("project_id", BigInteger, ForeignKey("projects.id"), nullable=False,
               index=True),
        Column("file", Text, nullable=False),
        Column("file_store", SmallInteger, nullable=False, default=1,
               server_default=text("1")),
        Column("size", BigInteger, nullable=False, default=0, server_default=text("0")),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    ]
    if verification_on_model:
        columns += [*verification_columns(), *verification_constraints(name)]
    return Table(name, metadata, *columns)


def state_table(metadata: MetaData, replicable_name: str, model_table: str) -> Table:
    """Option 2 of the template: a `<name>_states` table keyed by the model id,
    deleted with its model row."""
    name = state_table_name(replicable_name)
    return Table(
        name, metadata,
        Column(f"{replicable_name}_id", BigInteger,
               ForeignKey(f"{model_table}.id", ondelete="CASCADE"), primary_key=True,
               autoincrement=False),
        *verification_columns(), *verification_constraints(name))


def verification_columns() -> list[Column]:
    """The seven verification columns of a primary model or state table."""
    return [
        Column("verification_started_at", UTCDateTime),
        Column("verification_retry_at", UTCDateTime),
        Column("verified_at", UTCDateTime),
        Column("verification_state", SmallInteger, nullable=False, default=0,
               server_default=text("0")),
        Column("verification_retry_count", SmallInteger, nullable=False, default=0,
               server_default=text("0")),
        Column("verification_checksum", LargeBinary),
        Column("verification_failure", Text),
    ]


def verification_constraints(table: str) -> list:
    """The failure length check and the indexes the primary's claims and
    counts read, on the table that holds the verification columns."""
    state = literal_column("verification_state")
    return [
        CheckConstraint(f"length(verification_failure) <= {FAILURE_LIMIT}",
                        name=f"check_{table}_verification_failure_length"),
        Index(f"index_{table}_on_verification_state", "verification_state"),
        Index(f"index_{table}_failed_verification", NullsFirst("verification_retry_at"),
              postgresql_where=state == 3, sqlite_where=state == 3),
        Index(f"index_{table}_needs_verification", "verification_state",
              postgresql_where=state.in_([0, 3]), sqlite_where=state.in_([0, 3])),
        Index(f"index_{table}_pending_verification", NullsFirst("verified_at"),
              postgresql_where=state == 0, sqlite_where=state == 0),
    ]


# --- secondaries ------------------------------------------------------------------

def registry_table(metadata: MetaData, replicable_name: str) -> Table:
    """The `<name>_registry` table, column for column as GitLab's template,
    with the indexes the engine's claims and status counts read."""
    name = registry_table_name(replicable_name)
    fk = f"{replicable_name}_id"
    state = literal_column("state")
    vstate = literal_column("verification_state")

    def partial(index: str, *columns, where):
        return Index(index, *columns, postgresql_where=where, sqlite_where=where)

    return Table(
        name, metadata,
        Column("id", BigId, primary_key=True),
        Column(fk, BigInteger, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("last_synced_at", UTCDateTime),
        Column("retry_at", UTCDateTime),
        Column("verified_at", UTCDateTime),
        Column("verification_started_at", UTCDateTime),
        Column("verification_retry_at", UTCDateTime),
        Column("state", SmallInteger, nullable=False, default=0, server_default=text("0")),
        Column("verification_state", SmallInteger, nullable=False, default=0,
               server_default=text("0")),
        Column("retry_count", SmallInteger, nullable=False, default=0,
               server_default=text("0")),
        Column("verification_retry_count", SmallInteger, nullable=False, default=0,
               server_default=text("0")),
        Column("checksum_mismatch", Boolean, nullable=False, default=False,
               server_default=false()),
        Column("verification_checksum", LargeBinary),
        Column("verification_checksum_mismatched", LargeBinary),
        Column("verification_failure", Text),
        Column("last_sync_failure", Text),
        CheckConstraint(f"length(last_sync_failure) <= {FAILURE_LIMIT}",
                        name=f"check_{name}_last_sync_failure_length"),
        CheckConstraint(f"length(verification_failure) <= {FAILURE_LIMIT}",
                        name=f"check_{name}_verification_failure_length"),
        Index(f"index_{name}_on_{fk}", fk, unique=True),
        Index(f"index_{name}_on_state", "state"),
        # One GROUP BY over this index answers every status count.
        Index(f"index_{name}_on_state_and_verification_state", "state",
              "verification_state"),
        partial(f"{name}_failed_verification", NullsFirst("verification_retry_at"),
                where=(state == 2) & (vstate == 3)),
        partial(f"{name}_needs_verification", "verification_state",
                where=(state == 2) & vstate.in_([0, 3])),
        # Claims read the next three in their ORDER BY.
        partial(f"{name}_pending_verification", NullsFirst("verified_at"), "id",
                where=(state == 2) & (vstate == 0)),
        partial(f"index_{name}_pending_sync", "id", where=state == 0),
        partial(f"index_{name}_failed_sync", NullsFirst("retry_at"), "id", where=state == 3),
        # Re-verification reads the oldest verified first (registry_claims.py).
        partial(f"{name}_succeeded_verification", "verified_at", "id",
                where=(state == 2) & (vstate == 2)),
        *sort_indexes(name, ("last_synced_at", "verified_at"), "id"),
    )


def sort_indexes(table: str, columns, tie: str) -> list[Index]:
    """Indexes in the order the registry views sort by a nullable column:
    (column IS NULL, column, tie), so NULLs come last going up and first
    going down, and both databases read a page of a million rows from the
    index instead of sorting them."""
    return [Index(f"index_{table}_sorted_by_{column}", text(f"({column} IS NULL)"), column, tie)
            for column in columns]


# What each registry is, as the primary describes it; kept on the secondary
# beside the registry (one row per registry) so the views can show and sort
# by it without asking the primary per row. The columns, their GraphQL names
# and how the console titles them live in secondary/registry_row.py.
DETAILS_SORTED = ("file_name", "size", "project_path")


def registry_details_table(metadata: MetaData, replicable_name: str) -> Table:
    """The `<name>_registry_details` table: file name, size, storage, project,
    shard and checksum of each registry's record on the primary, keyed by the
    model id and deleted with its registry.

    A trigger on the registry table gives every new registry its (empty)
    details row, whoever inserts it, so the views can join the two 1:1 and
    sort by a detail from its index; the primary's answers fill it in
    (secondary/registry_details.py).
    """
    name = details_table_name(replicable_name)
    registry = registry_table_name(replicable_name)
    fk = f"{replicable_name}_id"
    table = Table(
        name, metadata,
        Column(fk, BigInteger, ForeignKey(f"{registry}.{fk}", ondelete="CASCADE"),
               primary_key=True, autoincrement=False),
        Column("file_name", Text),
        Column("size", BigInteger),
        Column("file_store", SmallInteger),
        Column("project_id", BigInteger),
        Column("project_path", Text),
        Column("shard", Text),
        Column("primary_checksum", Text),
        Column("described_at", UTCDateTime),
        *sort_indexes(name, DETAILS_SORTED, fk),
    )
    for statement in _details_triggers(registry, name, fk):
        event.listen(table, "after_create", statement)
    return table


def _details_triggers(registry: str, details: str, fk: str) -> list[DDL]:
    """New registries get their details row: per statement on PostgreSQL
    (a backfill of 50,000 registries is one INSERT … SELECT), per row on
    SQLite, which has no statement triggers."""
    function = f"{details}_for_new_registries"
    return [
        DDL(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO {details} ({fk}) SELECT {fk} FROM new_registries "
            f"ON CONFLICT DO NOTHING; RETURN NULL; END $$").execute_if(dialect="postgresql"),
        DDL(f"CREATE TRIGGER {function} AFTER INSERT ON {registry} "
            f"REFERENCING NEW TABLE AS new_registries FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {function}()").execute_if(dialect="postgresql"),
        DDL(f"CREATE TRIGGER {function} AFTER INSERT ON {registry} FOR EACH ROW BEGIN "
            f"INSERT OR IGNORE INTO {details} ({fk}) VALUES (NEW.{fk}); END")
        .execute_if(dialect="sqlite"),
    ]


# --- declarative models -----------------------------------------------------------

def make_registry_model(base, replicable_name: str):
    """The registry's mapped class (`CoolWidgetRegistry`) on `base`, and its
    details table beside it."""
    model = type(class_name(replicable_name, "Registry"), (base,),
                 {"__table__": registry_table(base.metadata, replicable_name)})
    registry_details_table(base.metadata, replicable_name)
    return model


def make_state_model(base, replicable_name: str, model_table: str):
    """The `<name>_states` mapped class (`CoolWidgetState`) on `base`."""
    return type(class_name(replicable_name, "State"), (base,),
                {"__table__": state_table(base.metadata, replicable_name, model_table)})


def make_blob_model(base, model_class: str, table: str, *, verification_on_model: bool):
    """The blob model's mapped class on `base`."""
    return type(model_class, (base,), {"__table__": blob_model_table(
        base.metadata, table, verification_on_model=verification_on_model)})
