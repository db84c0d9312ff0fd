"""Creating and upgrading both databases with Alembic.

Each database has its own history under backend/db/migrations/<which>/.
`upgrade(url, which)` brings a database to the newest revision; it is what
`python main.py db upgrade` and every site start run.

Alembic is imported only when there is something to do: a database already
at the newest revision is recognised by reading its version table, which
spares every start of a site the fifth of a second that importing Alembic
takes. The newest revision is the highest numbered file under versions/
(`NNNN_name.py`, revision "NNNN"); a test checks it is Alembic's head.
"""
from __future__ import annotations

import functools
import pathlib
import re

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from backend.db.engine import create_db_engine

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
DATABASES = ("primary", "tracking")
_REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")


def _checked(which: str) -> str:
    if which not in DATABASES:
        raise ValueError(f"unknown database {which!r}")
    return which


def alembic_config(which: str, engine: Engine | None = None):
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / _checked(which)))
    config.attributes["engine"] = engine
    return config


def upgrade(engine_or_url: Engine | str, which: str, revision: str = "head") -> None:
    engine = engine_or_url
    owned = False
    if isinstance(engine_or_url, str):
        engine, owned = create_db_engine(engine_or_url), True
    try:
        if revision == "head" and _at_newest_revision(engine, which):
            return
        from alembic import command
        command.upgrade(alembic_config(which, engine), revision)
    finally:
        if owned:
            engine.dispose()


@functools.cache
def newest_revision(which: str) -> str:
    """The highest numbered revision file of `which`'s history."""
    numbers = [match.group(1) for path in (MIGRATIONS / _checked(which) / "versions").iterdir()
               if (match := _REVISION_FILE.fullmatch(path.name))]
    return max(numbers)


def _at_newest_revision(engine: Engine, which: str) -> bool:
    query = text(f"SELECT version_num FROM alembic_version_{_checked(which)}")
    with engine.connect() as connection:  # an unreachable database fails here, once
        try:
            versions = connection.execute(query).scalars().all()
        except DBAPIError:  # no version table yet
            return False
    return versions == [newest_revision(which)]


def current_revision(engine: Engine, which: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": f"alembic_version_{_checked(which)}"})
        return context.get_current_revision()


def head_revision(which: str) -> str:
    from alembic.script import ScriptDirectory
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
