"""Package Files on the primary: `packages_package_files`, with its
verification state in columns on the model (template option 1).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from backend.framework.type_migrations import create_model_tables, drop_model_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_model_tables(op, "package_file", "packages_package_files",
                        verification_on_model=True)


def downgrade() -> None:
    drop_model_tables(op, "package_file", "packages_package_files",
                      verification_on_model=True)
