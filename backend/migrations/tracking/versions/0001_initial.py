"""Tracking database: the Cool Widget registry exactly as GitLab's template
creates it, the event cursor and the status history for charts.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import NullsFirst, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cool_widget_registry",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("cool_widget_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_synced_at", UTCDateTime()),
        sa.Column("retry_at", UTCDateTime()),
        sa.Column("verified_at", UTCDateTime()),
        sa.Column("verification_started_at", UTCDateTime()),
        sa.Column("verification_retry_at", UTCDateTime()),
        sa.Column("state", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("verification_state", sa.SmallInteger(), nullable=False,
                  server_default=sa.text("0")),
        sa.Column("retry_count", sa.SmallInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("verification_retry_count", sa.SmallInteger(), nullable=False,
                  server_default=sa.text("0")),
        sa.Column("checksum_mismatch", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("verification_checksum", sa.LargeBinary()),
        sa.Column("verification_checksum_mismatched", sa.LargeBinary()),
        sa.Column("verification_failure", sa.Text()),
        sa.Column("last_sync_failure", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="cool_widget_registry_pkey"),
        sa.CheckConstraint("length(last_sync_failure) <= 255",
                           name="check_cool_widget_registry_last_sync_failure_length"),
        sa.CheckConstraint("length(verification_failure) <= 255",
                           name="check_cool_widget_registry_verification_failure_length"),
    )
    table = "cool_widget_registry"
    op.create_index("index_cool_widget_registry_on_cool_widget_id", table, ["cool_widget_id"],
                    unique=True)
    op.create_index("index_cool_widget_registry_on_retry_at", table, ["retry_at"])
    op.create_index("index_cool_widget_registry_on_state", table, ["state"])
    # verification_failed_batch
    op.create_index("cool_widget_registry_failed_verification", table,
                    [NullsFirst("verification_retry_at")],
                    postgresql_where=sa.text("state = 2 AND verification_state = 3"),
                    sqlite_where=sa.text("state = 2 AND verification_state = 3"))
    # needs_verification_count
    op.create_index("cool_widget_registry_needs_verification", table, ["verification_state"],
                    postgresql_where=sa.text("state = 2 AND verification_state IN (0, 3)"),
                    sqlite_where=sa.text("state = 2 AND verification_state IN (0, 3)"))
    # verification_pending_batch
    op.create_index("cool_widget_registry_pending_verification", table,
                    [NullsFirst("verified_at")],
                    postgresql_where=sa.text("state = 2 AND verification_state = 0"),
                    sqlite_where=sa.text("state = 2 AND verification_state = 0"))

    op.create_table(
        "event_log_states",
        sa.Column("event_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("event_id", name="event_log_states_pkey"),
    )
    op.create_table(
        "status_history",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("replicable_name", sa.String(255), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_epoch", sa.BigInteger(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text("0"))
          for name in HISTORY_COUNTS],
        sa.PrimaryKeyConstraint("id", name="status_history_pkey"),
    )
    op.create_index("index_status_history_on_replicable_name_and_recorded_epoch",
                    "status_history", ["replicable_name", "recorded_epoch"])


HISTORY_COUNTS = (
    "registry_count", "synced_count", "failed_count", "verification_total_count",
    "verified_count", "verification_failed_count",
    "syncs_succeeded", "syncs_failed", "verifications_succeeded", "verifications_failed",
    "bytes_downloaded",
)


def downgrade() -> None:
    for table in ("status_history", "event_log_states", "cool_widget_registry"):
        op.drop_table(table)
