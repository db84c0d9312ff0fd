"""Replicas whose removal failed, and the index re-verification reads.

- `replica_removals`: the file of a deleted record that could not be
  removed (no permission, a directory where the file was), with the
  reason and when it is tried again; the registry itself is deleted with
  its record, as before (secondary/replica_removals.py).
- Every registry table gets `<name>_registry_succeeded_verification`, a
  partial index on (verified_at, id) where state = 2 and
  verification_state = 2, so that re-verification takes the replicas
  verified longest ago by reading a batch of the index, not the table.

Registries are found by name (`<name>_registry` with a `<name>_id`
column), as in 0007; one created by a later type's migration already has
the index and is skipped.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

from backend.db.base import BigId
from backend.db.types import UTCDateTime
from backend.framework.type_migrations import add_reverification_index, existing_registry_types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica_removals",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("replicable_name", sa.String(255), nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("retry_at", UTCDateTime, nullable=False),
        sa.Column("retry_count", sa.SmallInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_failure", sa.String(255), nullable=False),
    )
    op.create_index("index_replica_removals_on_replicable_name_and_model_id",
                    "replica_removals", ["replicable_name", "model_id"], unique=True)
    op.create_index("index_replica_removals_on_retry_at", "replica_removals", ["retry_at"])
    for name in existing_registry_types(op):
        add_reverification_index(op, name)


def downgrade() -> None:
    for name in existing_registry_types(op):
        op.drop_index(f"{name}_registry_succeeded_verification", f"{name}_registry")
    op.drop_table("replica_removals")
