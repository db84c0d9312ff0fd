"""Event log gaps: ids the cursor jumped over (a primary transaction still
open when a later event was read), looked for again for a bounded time so
that their events are handled (GitLab's EventGapTracking).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log_gaps",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="event_log_gaps_pkey"),
    )
    op.create_index("index_event_log_gaps_on_seen_at", "event_log_gaps", ["seen_at"])


def downgrade() -> None:
    op.drop_table("event_log_gaps")
