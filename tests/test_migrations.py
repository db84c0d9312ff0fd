"""Alembic creates both databases; the registry matches GitLab's template."""
import pathlib
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend.db.engine import create_db_engine
from backend.db.migrate import current_revision, head_revision, newest_revision, upgrade
from backend.replicables import metadata

REGISTRY_COLUMNS = [
    ("id", False), ("cool_widget_id", False), ("created_at", False), ("last_synced_at", True),
    ("retry_at", True), ("verified_at", True), ("verification_started_at", True),
    ("verification_retry_at", True), ("state", False), ("verification_state", False),
    ("retry_count", False), ("verification_retry_count", False), ("checksum_mismatch", False),
    ("verification_checksum", True), ("verification_checksum_mismatched", True),
    ("verification_failure", True), ("last_sync_failure", True),
]


def test_registry_has_the_template_columns_in_order(tracking_engine):
    columns = inspect(tracking_engine).get_columns("cool_widget_registry")
    assert [(c["name"], c["nullable"]) for c in columns] == REGISTRY_COLUMNS
    defaults = {c["name"]: str(c["default"]) for c in columns if c["default"] is not None}
    for name in ("state", "verification_state", "retry_count", "verification_retry_count"):
        assert "0" in defaults[name]
    assert defaults["checksum_mismatch"].lower() in ("false", "0", "'0'")


def test_registry_indexes_unique_and_partial(tracking_engine):
    indexes = {i["name"]: i for i in inspect(tracking_engine).get_indexes("cool_widget_registry")}
    assert indexes["index_cool_widget_registry_on_cool_widget_id"]["unique"]
    for name in ("cool_widget_registry_failed_verification",
                 "cool_widget_registry_needs_verification",
                 "cool_widget_registry_pending_verification",
                 "index_cool_widget_registry_failed_sync",
                 "index_cool_widget_registry_pending_sync",
                 "index_cool_widget_registry_on_state",
                 "index_cool_widget_registry_on_state_and_verification_state"):
        assert name in indexes
    with tracking_engine.connect() as connection:
        if tracking_engine.dialect.name == "sqlite":
            sql = dict(connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type='index'").all())
        else:
            sql = dict(connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename='cool_widget_registry' AND schemaname=current_schema()").all())
    sql = {name: (definition or "").replace("(", "").replace(")", "")
           for name, definition in sql.items()}
    assert "state = 2 AND verification_state = 3" in sql["cool_widget_registry_failed_verification"]
    assert "verified_at" in sql["cool_widget_registry_pending_verification"]
    if tracking_engine.dialect.name == "postgresql":
        assert "verification_retry_at NULLS FIRST" in sql["cool_widget_registry_failed_verification"]
        assert "verified_at NULLS FIRST, id" in sql["cool_widget_registry_pending_verification"]
        assert "retry_at NULLS FIRST, id" in sql["index_cool_widget_registry_failed_sync"]
    assert "state = 2 AND verification_state = 0" in sql["cool_widget_registry_pending_verification"]
    assert "WHERE state = 0" in sql["index_cool_widget_registry_pending_sync"]
    assert "WHERE state = 3" in sql["index_cool_widget_registry_failed_sync"]
    needs = sql["cool_widget_registry_needs_verification"]
    assert "state = 2" in needs and ("IN 0, 3" in needs or "ARRAY[0, 3]" in needs)


def test_failure_columns_refuse_more_than_255_characters(tracking_engine):
    import datetime as dt

    import pytest
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from backend.replicables.cool_widgets import CoolWidgetRegistry
    with pytest.raises(IntegrityError):
        with tracking_engine.begin() as connection:
            connection.execute(insert(CoolWidgetRegistry).values(
                cool_widget_id=1, created_at=dt.datetime.now(dt.timezone.utc),
                last_sync_failure="x" * 256))


def test_migrations_match_the_models(databases):
    for which in ("primary", "tracking"):
        engine = create_db_engine(databases.url(which))
        upgrade(engine, which)
        assert current_revision(engine, which) == head_revision(which)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": False,
                                  "include_name": _ours(which),
                                  "include_object": _ours_object(which)})
            diff = compare_metadata(context, metadata(which))
        engine.dispose()
        assert diff == [], f"{which}: models and migrations differ: {diff}"


def _ours(which):
    def include(name, type_, parent_names):
        # Test-only replicables (tests/support) have no migration.
        if type_ == "table" and name and name.startswith(("gadget", "alembic_version")):
            return False
        # NULLS FIRST indexes are expressions alembic cannot compare; the
        # registry test above checks them.
        if type_ == "index" and name and name.endswith(("_failed_verification",
                                                        "_pending_verification",
                                                        "_failed_sync")):
            return False
        return True
    return include


def _ours_object(which):
    include = _ours(which)
    return lambda obj, name, type_, reflected, compare_to: include(name, type_, None)


def test_upgrade_is_idempotent(databases):
    url = databases.url("tracking")
    upgrade(url, "tracking")
    upgrade(url, "tracking")
    engine = create_db_engine(url)
    assert current_revision(engine, "tracking") == head_revision("tracking")
    engine.dispose()


def test_the_newest_revision_file_is_alembics_head():
    for which in ("primary", "tracking"):
        assert newest_revision(which) == head_revision(which)


def test_a_database_at_the_newest_revision_starts_without_alembic(databases):
    url = databases.url("tracking")
    upgrade(url, "tracking")
    check = ("import sys; from backend.db.migrate import upgrade; "
             f"upgrade({url!r}, 'tracking'); print('alembic' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parent.parent, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "False"


def test_an_older_database_is_still_upgraded(databases):
    url = databases.url("tracking")
    upgrade(url, "tracking", "0004")
    engine = create_db_engine(url)
    assert current_revision(engine, "tracking") == "0004"
    upgrade(engine, "tracking")
    assert current_revision(engine, "tracking") == head_revision("tracking")
    engine.dispose()
