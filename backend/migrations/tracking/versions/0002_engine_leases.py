"""Engine leases: one engine at a time consumes events and walks consistency.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_leases",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="engine_leases_pkey"),
    )


def downgrade() -> None:
    op.drop_table("engine_leases")
