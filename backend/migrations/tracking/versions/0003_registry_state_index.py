"""A (state, verification_state) index on the registry, so that one GROUP BY
pass computes every status count with an index-only scan.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("index_cool_widget_registry_on_state_and_verification_state",
                    "cool_widget_registry", ["state", "verification_state"])


def downgrade() -> None:
    op.drop_index("index_cool_widget_registry_on_state_and_verification_state",
                  "cool_widget_registry")
