"""Alembic environment for the primary database; run through backend.db.migrate."""
from alembic import context

from backend.db.migrate import run_migrations_online

run_migrations_online(context, "primary")
