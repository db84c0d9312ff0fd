"""Alembic migration histories, one per database (primary, tracking)."""
