"""Creating a replicable type's tables in an Alembic migration, from the
same builders its models come from (`framework/columns.py`).

A new type's migrations are then a line each:

    # backend/migrations/primary/versions/NNNN_<types>.py
    def upgrade() -> None:
        create_model_tables(op, "package_file", "packages_package_files",
                            verification_on_model=True)

    # backend/migrations/tracking/versions/NNNN_<name>_registry.py
    def upgrade() -> None:
        create_registry_table(op, "package_file")

The helpers build the template as it is when the migration runs. A change
to the template is therefore a migration of its own that brings every
existing table along, and must skip a table already in the new shape
(created after the change).
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, Table

from backend.db.base import NAMING_CONVENTION
from backend.framework import columns


def create_registry_table(op, replicable_name: str) -> None:
    """The `<name>_registry` table on a secondary's tracking database, and
    its `<name>_registry_details` with the trigger that fills it."""
    metadata = _metadata()
    _create(op, columns.registry_table(metadata, replicable_name))
    _create(op, columns.registry_details_table(metadata, replicable_name))


def drop_registry_table(op, replicable_name: str) -> None:
    details = columns.details_table_name(replicable_name)
    op.execute(f"DROP TABLE IF EXISTS {details}")  # a downgrade of 0007 may have dropped it
    op.drop_table(columns.registry_table_name(replicable_name))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {details}_for_new_registries()")


def existing_registry_types(op) -> list[str]:
    """The types whose registries the database holds, found by name
    (`<name>_registry` with a `<name>_id` column): a migration that brings
    every registry along needs no list of types."""
    from sqlalchemy import inspect
    inspector = inspect(op.get_bind())
    names = []
    for table in inspector.get_table_names():
        name = table.removesuffix("_registry")
        if name != table and f"{name}_id" in {c["name"] for c in inspector.get_columns(table)}:
            names.append(name)
    return sorted(names)


def add_registry_details(op, replicable_name: str) -> None:
    """Bring a registry made before 0007 to the template of 0007: its details
    table (with a row for every registry it has) and the indexes its views
    sort by. A registry created since is already so, and left alone."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateIndex
    bind = op.get_bind()
    name = columns.registry_table_name(replicable_name)
    details = columns.details_table_name(replicable_name)
    fk = f"{replicable_name}_id"
    metadata = _metadata()
    registry = columns.registry_table(metadata, replicable_name)
    for index in registry.indexes:
        # IF NOT EXISTS: SQLAlchemy cannot reflect expression indexes on SQLite.
        if index.name.startswith(f"index_{name}_sorted_by_"):
            bind.execute(CreateIndex(index, if_not_exists=True))
    if not inspect(bind).has_table(details):
        _create(op, columns.registry_details_table(metadata, replicable_name))
        op.execute(f"INSERT INTO {details} ({fk}) SELECT {fk} FROM {name}")


def add_reverification_index(op, replicable_name: str) -> None:
    """Bring a registry made before 0008 to the template of 0008: the
    partial index re-verification reads (succeeded verifications by
    verified_at). A registry created since has it, and is left alone."""
    from sqlalchemy.schema import CreateIndex
    name = columns.registry_table_name(replicable_name)
    registry = columns.registry_table(_metadata(), replicable_name)
    for index in registry.indexes:
        if index.name == f"{name}_succeeded_verification":
            op.get_bind().execute(CreateIndex(index, if_not_exists=True))


def create_model_tables(op, replicable_name: str, model_table: str, *,
                        verification_on_model: bool) -> None:
    """The blob model on the primary, and its `<name>_states` table unless
    the verification columns are on the model."""
    metadata = _metadata()
    _create(op, columns.blob_model_table(metadata, model_table,
                                         verification_on_model=verification_on_model))
    if not verification_on_model:
        _create(op, columns.state_table(metadata, replicable_name, model_table))


def drop_model_tables(op, replicable_name: str, model_table: str, *,
                      verification_on_model: bool) -> None:
    if not verification_on_model:
        op.drop_table(columns.state_table_name(replicable_name))
    op.drop_table(model_table)


def _metadata() -> MetaData:
    """The models' naming convention, so constraints get the models' names;
    the projects table as a stand-in that foreign keys can name."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table("projects", metadata, Column("id", BigInteger, primary_key=True))
    return metadata


def _create(op, table: Table) -> None:
    """CREATE TABLE and its indexes, in the migration's transaction."""
    table.create(op.get_bind())
