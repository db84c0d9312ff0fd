"""A GitLab secondary's tracking database read and changed directly: its
tables found in the catalog, the older ones handled or left out with the
reason, a million rows browsed at random, and resync and reverify done as
GitLab's bulk services do them, 1,000 rows a transaction, changing exactly
the registries picked. Real PostgreSQL, with GitLab's tables
(tests/support/gitlab_tracking_schema.py)."""
from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
from sqlalchemy import create_engine

from app.gitlab_db_source import GitLabDatabaseError, GitLabDatabaseSource
from backend.framework.states import SyncState, VerificationState
from backend.secondary.registry_selection import RegistrySelection
from tests.conftest import DatabaseFactory, require_database
from tests.support import gitlab_tracking_schema

UTC = dt.timezone.utc
SUM = hashlib.sha256(b"blob").digest()


@pytest.fixture
def gitlab_db(tmp_path, monkeypatch):
    """(url, engine) of an empty GitLab tracking database."""
    require_database("postgresql")
    monkeypatch.setenv("GEO_CONSOLE_HOME", str(tmp_path / "home"))
    factory = DatabaseFactory("postgresql", tmp_path)
    url = factory.url("gitlab_geo")
    engine = create_engine(url)
    with engine.begin() as connection:
        gitlab_tracking_schema.create(connection)
    yield url, engine
    engine.dispose()
    factory.cleanup()


def fill(engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(sql)


def test_registry_tables_are_found_and_the_older_ones_handled_or_left_out(gitlab_db):
    url, engine = gitlab_db
    # An upload synced at noon UTC, written into a column without time zone
    # as GitLab writes it; its checksum in GitLab's bytea form.
    fill(engine, "INSERT INTO file_registry (file_id, created_at, retry_at, state, "
                 "verification_state, verification_checksum, missing_on_primary) VALUES "
                 f"(41, '2026-11-30 12:00:00', NULL, 2, 2, '\\x{SUM.hex()}', false), "
                 "(42, '2026-11-30 12:00:00', '2026-11-30 13:00:00', 3, 0, NULL, true)")
    fill(engine, "INSERT INTO event_log_states (event_id, created_at) VALUES (7, now())")
    source = GitLabDatabaseSource(url)
    try:
        names = {kind.replicable_name: kind for kind in source.types}
        assert set(names) == {"ci_secure_file", "package_file", "upload", "job_artifact",
                              "lfs_object", "project_repository"}
        assert (names["project_repository"].title_plural,
                names["project_repository"].registry_fk) == ("Project Repositories",
                                                             "project_id")
        assert (names["upload"].title_plural, names["upload"].registry_fk) == ("Uploads",
                                                                               "file_id")
        assert names["job_artifact"].registry_fk == "artifact_id"
        assert names["lfs_object"].title_plural == "LFS Objects"
        left_out = {item.table: item.reason for item in source.left_out}
        assert set(left_out) == {"container_repository_registry", "project_registry"}
        assert "state is text" in left_out["container_repository_registry"]
        assert "not a registry of GitLab's self-service framework" in \
            left_out["project_registry"]

        rows = source.rows("upload", RegistrySelection(), "ID_ASC", 0, 10)
        assert [(r.model_id, r.state) for r in rows] == [(41, SyncState.SYNCED),
                                                          (42, SyncState.FAILED)]
        assert rows[0].created_at == dt.datetime(2026, 11, 30, 12, tzinfo=UTC)
        assert rows[0].verification_checksum == SUM.hex()
        assert (rows[0].missing_on_primary, rows[1].missing_on_primary) == (False, True)
        status = source.overview()
        assert (status["uploads_registry_count"], status["uploads_synced_in_percentage"]) == \
            (2, "50.00%")
        assert status["event_log_text"].startswith("processed up to event 7")
        assert any("container_repository_registry" in line for line in status["left_out"])
    finally:
        source.close()


@pytest.mark.slow
def test_a_million_registries_are_browsed_at_random(gitlab_db):
    url, engine = gitlab_db
    fill(engine, "INSERT INTO package_file_registry (package_file_id, state, created_at, "
                 "verification_state, last_sync_failure) "
                 "SELECT n + 5000, CASE WHEN mod(n, 100) = 0 THEN 3 ELSE 2 END, now(), "
                 "CASE WHEN mod(n, 100) = 0 THEN 0 ELSE 2 END, "
                 "CASE WHEN mod(n, 100) = 0 THEN 'Error downloading file' END "
                 "FROM generate_series(1, 1000000) AS n; ANALYZE package_file_registry")
    source = GitLabDatabaseSource(url)
    try:
        every = RegistrySelection()
        assert source.count("package_file", every) == 1_000_000
        started = time.monotonic()
        rows = source.rows("package_file", every, "ID_ASC", 999_990, 20)
        far = time.monotonic() - started
        print(f"a page at offset 999,990 of 1,000,000: {far * 1000:.0f} ms")
        assert [r.registry_id for r in rows] == list(range(999_991, 1_000_001))
        assert far < 2.0, far
        last = source.rows("package_file", every, "ID_DESC", 0, 3)
        assert [r.model_id for r in last] == [1_005_000, 1_004_999, 1_004_998]
        counts = source.state_counts("package_file")
        assert (counts["failed"], counts["synced"]) == (10_000, 990_000)
        groups = source.failure_groups("package_file")
        assert [(g["kind"], g["message"], g["count"]) for g in groups] == [
            ("sync", "Error downloading file", 10_000)]
        with pytest.raises(ValueError, match="no file names"):
            source.rows("package_file", every, "FILE_NAME_ASC", 0, 5)
    finally:
        source.close()


class Progress:
    def __init__(self):
        self.reports, self.early = [], None

    def report(self, done, total):
        self.reports.append((done, total))

    def cancelled(self):
        return False

    def stopped(self, early):
        self.early = early


def test_resync_and_reverify_are_gitlabs_bulk_updates_of_exactly_the_registries_picked(
        gitlab_db):
    url, engine = gitlab_db
    fill(engine, "INSERT INTO ci_secure_file_registry (ci_secure_file_id, created_at, state, "
                 "verification_state, retry_count, retry_at, last_sync_failure, "
                 "verification_retry_count, verification_retry_at, verification_failure) "
                 "SELECT n, now(), CASE WHEN n <= 2500 THEN 3 ELSE 2 END, "
                 "CASE WHEN n <= 2500 THEN 4 WHEN n <= 2600 THEN 3 ELSE 2 END, "
                 "CASE WHEN n <= 2500 THEN 4 ELSE 0 END, "
                 "CASE WHEN n <= 2500 THEN now() + interval '1 hour' END, "
                 "CASE WHEN n <= 2500 THEN 'Error downloading file' END, "
                 "CASE WHEN n BETWEEN 2501 AND 2600 THEN 2 ELSE 0 END, "
                 "CASE WHEN n BETWEEN 2501 AND 2600 THEN now() + interval '1 hour' END, "
                 "CASE WHEN n BETWEEN 2501 AND 2600 THEN 'Checksum mismatch' END "
                 "FROM generate_series(1, 5000) AS n")

    def snapshot():
        with engine.connect() as connection:
            return {row[0]: row[1:] for row in connection.exec_driver_sql(
                "SELECT id, state, retry_count, retry_at, verification_state, "
                "verification_retry_count, verification_retry_at FROM ci_secure_file_registry")}

    before = snapshot()
    source = GitLabDatabaseSource(url)
    try:
        progress = Progress()
        failed = RegistrySelection(replication_state=SyncState.FAILED)
        assert source.act("ci_secure_file", "resync", failed, progress=progress) == 2500
        # Three transactions of at most 1,000 rows, each reported.
        assert progress.reports == [(0, 2500), (1000, 2500), (2000, 2500), (2500, 2500)]
        after = snapshot()
        changed = {i for i in after if after[i] != before[i]}
        assert changed == set(range(1, 2501))
        assert all(after[i][:3] == (SyncState.PENDING, 0, None) for i in changed)
        # Reverify the failed verifications: only synced registries, as GitLab.
        picked = RegistrySelection(verification_state=VerificationState.FAILED)
        assert source.act("ci_secure_file", "reverify", picked) == 100
        again = snapshot()
        assert {i for i in again if again[i] != after[i]} == set(range(2501, 2601))
        assert all(again[i][3] == VerificationState.PENDING for i in range(2501, 2601))
        # By ids, exactly those.
        assert source.act("ci_secure_file", "resync", RegistrySelection(ids=(4000, 4999))) == 2
        last = snapshot()
        assert {i for i in last if last[i] != again[i]} == {4000, 4999}
    finally:
        source.close()


def test_what_cannot_be_a_gitlab_tracking_database_is_one_plain_sentence(tmp_path, gitlab_db):
    url, engine = gitlab_db
    fill(engine, "DROP TABLE ci_secure_file_registry, package_file_registry, file_registry, "
                 "job_artifact_registry, lfs_object_registry, project_repository_registry")
    with pytest.raises(GitLabDatabaseError) as none:
        GitLabDatabaseSource(url)
    assert "has no registry tables of GitLab Geo" in str(none.value)
    assert "container_repository_registry: its state is text" in str(none.value)
    with pytest.raises(GitLabDatabaseError, match="is PostgreSQL"):
        GitLabDatabaseSource(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(GitLabDatabaseError) as unreachable:
        GitLabDatabaseSource("postgresql+psycopg2://postgres@127.0.0.1:9/gitlabhq_geo_production")
    message = str(unreachable.value)
    assert message.startswith("cannot read the tracking database at "
                              "gitlabhq_geo_production@127.0.0.1:9")
    assert "Traceback" not in message and "OperationalError" not in message


def test_the_console_confirms_every_action_on_gitlabs_database(gitlab_db, qtbot):
    """Writing to GitLab's tracking database behind GitLab's back: even a
    resync of the registries picked in the table is asked first, a refusal
    changes nothing, and an order the database cannot give is refused."""
    from PySide6.QtCore import QItemSelectionModel

    from app.details_page import DetailsPage
    from app.tasks import TaskRunner
    url, engine = gitlab_db
    fill(engine, "INSERT INTO file_registry (file_id, created_at, state, verification_state) "
                 "SELECT n, now(), 2, 2 FROM generate_series(1, 30) AS n")

    def states():
        with engine.connect() as connection:
            return dict(connection.exec_driver_sql("SELECT id, state FROM file_registry")
                        .fetchall())

    source = GitLabDatabaseSource(url)
    runner = TaskRunner()
    page = DetailsPage(runner, source)
    qtbot.addWidget(page)
    page.show()
    page.start()
    try:
        page.set_type(next(kind for kind in source.types if kind.replicable_name == "upload"))
        qtbot.waitUntil(lambda: page.model.rowCount() == 30 and page.model.row_data(0)
                        is not None, timeout=10000)
        for row in (0, 4):
            page.table.selectionModel().select(
                page.table.model().index(row, 0),
                QItemSelectionModel.Select | QItemSelectionModel.Rows)
        asked = []
        page.confirm = lambda title, text: asked.append((title, text)) or False
        page.act_on_selection("resync")
        assert asked and asked[0][0] == "Resync 2 registries"
        assert "writing to GitLab tracking database" in asked[0][1]
        assert "as GitLab's own bulk resync and reverify do" in asked[0][1]
        page.runner.wait()
        assert set(states().values()) == {SyncState.SYNCED}
        page.confirm = lambda title, text: True
        page.act_on_selection("resync")
        qtbot.waitUntil(lambda: sorted(i for i, state in states().items()
                                       if state == SyncState.PENDING) == [1, 5], timeout=10000)
        page.sort_by("FILE_NAME_ASC")
        assert page.sort == "ID_ASC"
    finally:
        page.stop()
        runner.close()
        source.close()
