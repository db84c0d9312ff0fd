"""The Package File registry, as GitLab's template creates every registry.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

from backend.framework.type_migrations import create_registry_table, drop_registry_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_registry_table(op, "package_file")


def downgrade() -> None:
    drop_registry_table(op, "package_file")
