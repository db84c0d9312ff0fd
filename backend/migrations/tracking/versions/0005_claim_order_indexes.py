"""Indexes in the order the engine claims rows, and fewer indexes for a
claim to update.

- Pending syncs are claimed in id order: a partial index on id where
  state = 0. Without it a claim at 1,000,000 pending registries sorted
  every candidate.
- Retry-due failed syncs are claimed in (retry_at NULLS FIRST, id) order:
  a partial index on those where state = 3 replaces the plain retry_at
  index, which every row (NULL retry_at included) had to maintain.
- Pending verifications are claimed in (verified_at NULLS FIRST, id)
  order: the id joins the partial index, which had verified_at only.
The claims compare state with literal numbers (registry_store.py), so that
SQLite, which cannot match a bound parameter against an index's WHERE,
uses these partial indexes too.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from backend.db.types import NullsFirst

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "cool_widget_registry"
PENDING_VERIFICATION = "state = 2 AND verification_state = 0"


def _partial(name: str, columns: list, where: str) -> None:
    op.create_index(name, TABLE, columns, postgresql_where=sa.text(where),
                    sqlite_where=sa.text(where))


def upgrade() -> None:
    _partial(f"index_{TABLE}_pending_sync", ["id"], "state = 0")
    _partial(f"index_{TABLE}_failed_sync", [NullsFirst("retry_at"), "id"], "state = 3")
    op.drop_index(f"index_{TABLE}_on_retry_at", TABLE)
    op.drop_index(f"{TABLE}_pending_verification", TABLE)
    _partial(f"{TABLE}_pending_verification", [NullsFirst("verified_at"), "id"],
             PENDING_VERIFICATION)


def downgrade() -> None:
    op.drop_index(f"{TABLE}_pending_verification", TABLE)
    _partial(f"{TABLE}_pending_verification", [NullsFirst("verified_at")], PENDING_VERIFICATION)
    op.create_index(f"index_{TABLE}_on_retry_at", TABLE, ["retry_at"])
    op.drop_index(f"index_{TABLE}_failed_sync", TABLE)
    op.drop_index(f"index_{TABLE}_pending_sync", TABLE)
