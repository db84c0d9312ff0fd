"""Engine heartbeats: recover the claims of a crashed engine without waiting
for the 8-hour timeouts.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_heartbeats",
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("holder", name="engine_heartbeats_pkey"),
    )
    op.create_index("index_engine_heartbeats_on_seen_at", "engine_heartbeats", ["seen_at"])


def downgrade() -> None:
    op.drop_table("engine_heartbeats")
