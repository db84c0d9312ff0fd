"""Alembic environment for the tracking database; run through backend.db.migrate."""
from alembic import context

from backend.db.migrate import run_migrations_online

run_migrations_online(context, "tracking")
