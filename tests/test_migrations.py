"""Alembic creates both databases; every registry matches GitLab's template,
and both ways of keeping the primary's verification state are migrated."""
import pathlib
import subprocess
import sys
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend.db.engine import create_db_engine
from backend.db.migrate import current_revision, head_revision, newest_revision, upgrade
from backend.replicables import metadata

import pytest

REGISTRIES = ("cool_widget", "package_file")
REGISTRY_COLUMNS = [
    ("id", False), ("{fk}", False), ("created_at", False), ("last_synced_at", True),
    ("retry_at", True), ("verified_at", True), ("verification_started_at", True),
    ("verification_retry_at", True), ("state", False), ("verification_state", False),
    ("retry_count", False), ("verification_retry_count", False), ("checksum_mismatch", False),
    ("verification_checksum", True), ("verification_checksum_mismatched", True),
    ("verification_failure", True), ("last_sync_failure", True),
]


@pytest.mark.parametrize("name", REGISTRIES)
def test_registry_has_the_template_columns_in_order(tracking_engine, name):
    columns = inspect(tracking_engine).get_columns(f"{name}_registry")
    expected = [(column.format(fk=f"{name}_id"), nullable)
                for column, nullable in REGISTRY_COLUMNS]
    assert [(c["name"], c["nullable"]) for c in columns] == expected
    defaults = {c["name"]: str(c["default"]) for c in columns if c["default"] is not None}
    for column in ("state", "verification_state", "retry_count", "verification_retry_count"):
        assert "0" in defaults[column]
    assert defaults["checksum_mismatch"].lower() in ("false", "0", "'0'")


def index_sql(engine, table: str) -> dict[str, str]:
    """Index name -> its definition, parentheses dropped."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = dict(connection.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=?",
                (table,)).all())
        else:
            sql = dict(connection.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename=%(t)s AND schemaname=current_schema()", {"t": table}).all())
    return {name: (definition or "").replace("(", "").replace(")", "")
            for name, definition in sql.items()}


@pytest.mark.parametrize("name", REGISTRIES)
def test_registry_indexes_unique_and_partial(tracking_engine, name):
    table = f"{name}_registry"
    sql = index_sql(tracking_engine, table)
    assert "UNIQUE" in sql[f"index_{table}_on_{name}_id"]
    for index in (f"{table}_failed_verification", f"{table}_needs_verification",
                  f"{table}_pending_verification", f"index_{table}_failed_sync",
                  f"index_{table}_pending_sync", f"index_{table}_on_state",
                  f"index_{table}_on_state_and_verification_state",
                  f"{table}_succeeded_verification"):
        assert index in sql
    for column in ("last_synced_at", "verified_at"):
        assert f"{column} IS NULL, {column}, id" in sql[f"index_{table}_sorted_by_{column}"]
    assert len([n for n in sql if not n.startswith(("sqlite_autoindex", f"{table}_pkey"))]) == 11
    succeeded = sql[f"{table}_succeeded_verification"]
    assert "verified_at, id" in succeeded and "state = 2 AND verification_state = 2" in succeeded
    assert "state = 2 AND verification_state = 3" in sql[f"{table}_failed_verification"]
    assert "verified_at" in sql[f"{table}_pending_verification"]
    if tracking_engine.dialect.name == "postgresql":
        assert "verification_retry_at NULLS FIRST" in sql[f"{table}_failed_verification"]
        assert "verified_at NULLS FIRST, id" in sql[f"{table}_pending_verification"]
        assert "retry_at NULLS FIRST, id" in sql[f"index_{table}_failed_sync"]
    assert "state = 2 AND verification_state = 0" in sql[f"{table}_pending_verification"]
    assert "WHERE state = 0" in sql[f"index_{table}_pending_sync"]
    assert "WHERE state = 3" in sql[f"index_{table}_failed_sync"]
    needs = sql[f"{table}_needs_verification"]
    assert "state = 2" in needs and ("IN 0, 3" in needs or "ARRAY[0, 3]" in needs)


@pytest.mark.parametrize("table", ["cool_widget_states", "packages_package_files"])
def test_the_primary_keeps_verification_state_in_a_table_or_on_the_model(databases, table):
    url = databases.url("primary")
    upgrade(url, "primary")
    engine = create_db_engine(url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns(table)}
        indexes = index_sql(engine, table)
        checks = {c["name"] for c in inspect(engine).get_check_constraints(table)}
    finally:
        engine.dispose()
    assert {"verification_state", "verification_started_at", "verification_retry_at",
            "verified_at", "verification_retry_count", "verification_checksum",
            "verification_failure"} <= columns
    assert ("file" in columns) == (table == "packages_package_files")
    assert "verification_state = 3" in indexes[f"index_{table}_failed_verification"]
    assert "verification_state = 0" in indexes[f"index_{table}_pending_verification"]
    assert f"index_{table}_on_verification_state" in indexes
    assert f"check_{table}_verification_failure_length" in checks


def test_failure_columns_refuse_more_than_255_characters(tracking_engine):
    import datetime as dt

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
            with warnings.catch_warnings():
                # The sort indexes are expressions SQLAlchemy does not reflect
                # on SQLite; test_registry_indexes_unique_and_partial reads them.
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of "
                                        "expression-based index")
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
        if type_ == "index" and name and (name.endswith(("_failed_verification",
                                                         "_pending_verification",
                                                         "_failed_sync"))
                                          or "_sorted_by_" in name):
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


def _insert_registries(engine, name: str, model_ids) -> None:
    import datetime as dt

    from sqlalchemy import text
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {name}_registry ({name}_id, created_at) "
                                "VALUES (:m, :now)"),
                           [{"m": model_id, "now": now.replace(tzinfo=None)
                             if engine.dialect.name == "sqlite" else now}
                            for model_id in model_ids])


def _details_ids(engine, name: str) -> list[int]:
    from sqlalchemy import text
    with engine.connect() as connection:
        return list(connection.execute(text(
            f"SELECT {name}_id FROM {name}_registry_details ORDER BY 1")).scalars())


@pytest.mark.parametrize("name", REGISTRIES)
def test_every_registry_has_one_details_row_whoever_writes_it(tracking_engine, name):
    from sqlalchemy import text
    _insert_registries(tracking_engine, name, [3, 1, 2])
    with tracking_engine.begin() as connection:  # one statement of many rows
        connection.execute(text(f"INSERT INTO {name}_registry ({name}_id, created_at) "
                                f"SELECT {name}_id + 10, created_at FROM {name}_registry"))
    assert _details_ids(tracking_engine, name) == [1, 2, 3, 11, 12, 13]
    with tracking_engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {name}_registry WHERE {name}_id IN (2, 12)"))
    assert _details_ids(tracking_engine, name) == [1, 3, 11, 13]
    sql = index_sql(tracking_engine, f"{name}_registry_details")
    for column in ("file_name", "size", "project_path"):
        assert f"{column} IS NULL, {column}, {name}_id" in \
            sql[f"index_{name}_registry_details_sorted_by_{column}"]


def test_registries_made_before_details_get_them_in_the_upgrade(databases):
    url = databases.url("tracking")
    upgrade(url, "tracking", "0006")
    engine = create_db_engine(url)
    try:
        _insert_registries(engine, "cool_widget", [5, 7])
        _insert_registries(engine, "package_file", [9])
        upgrade(engine, "tracking")
        assert _details_ids(engine, "cool_widget") == [5, 7]
        assert _details_ids(engine, "package_file") == [9]
        _insert_registries(engine, "cool_widget", [8])
        assert _details_ids(engine, "cool_widget") == [5, 7, 8]
        assert "last_synced_at IS NULL" in index_sql(engine, "cool_widget_registry")[
            "index_cool_widget_registry_sorted_by_last_synced_at"]
    finally:
        engine.dispose()
