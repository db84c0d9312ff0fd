"""What each registry is, kept beside it: every registry table gets its
`<name>_registry_details` (file name, size, storage, project, shard and
the primary's checksum, as the primary describes the record; one row per
registry, kept so by a trigger), and indexes for the views' sorts by last
synced and last verified.

Registries are found by name (`<name>_registry` with a `<name>_id`
column), so the migration needs no list of types; a registry created by a
later type's migration already has all of this and is skipped.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

from backend.framework.type_migrations import add_registry_details, existing_registry_types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in existing_registry_types(op):
        add_registry_details(op, name)


def downgrade() -> None:
    bind = op.get_bind()
    for name in existing_registry_types(op):
        op.drop_table(f"{name}_registry_details")
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}_registry_details_for_new_registries()")
        for column in ("last_synced_at", "verified_at"):
            op.drop_index(f"index_{name}_registry_sorted_by_{column}", f"{name}_registry")
