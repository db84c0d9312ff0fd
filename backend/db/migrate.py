"""Creating and upgrading both databases with Alembic.

Each database has its own history under backend/db/migrations/<which>/.
`upgrade(url, which)` brings a database to the newest revision; it is what
`python main.py db upgrade` and every site start run.
"""
from __future__ import annotations

import pathlib

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from backend.db.engine import create_db_engine

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
DATABASES = ("primary", "tracking")


def alembic_config(which: str, engine: Engine | None = None) -> Config:
    if which not in DATABASES:
        raise ValueError(f"unknown database {which!r}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / which))
    config.attributes["engine"] = engine
    return config


def upgrade(engine_or_url: Engine | str, which: str, revision: str = "head") -> None:
    engine = engine_or_url
    owned = False
    if isinstance(engine_or_url, str):
        engine, owned = create_db_engine(engine_or_url), True
    try:
        command.upgrade(alembic_config(which, engine), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine, which: str) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": f"alembic_version_{which}"})
        return context.get_current_revision()


def head_revision(which: str) -> str:
    return ScriptDirectory.from_config(alembic_config(which)).get_current_head()


def metadata_for(which: str):
    import backend.replicables  # noqa: F401  (registers every type's tables)
    from backend.db.base import PrimaryBase, TrackingBase
    from backend.db import primary_schema, tracking_schema  # noqa: F401
    return PrimaryBase.metadata if which == "primary" else TrackingBase.metadata


def run_migrations_online(context, which: str) -> None:
    """Called from each history's env.py."""
    engine = context.config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("run migrations through backend.db.migrate.upgrade()")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata_for(which),
            render_as_batch=connection.dialect.name == "sqlite",
            version_table=f"alembic_version_{which}",
        )
        with context.begin_transaction():
            context.run_migrations()
