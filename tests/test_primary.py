"""The primary: catalog, events, checksumming for both verification-state
storages (a state table for Cool Widgets, columns on the model for
Package Files)."""
import datetime as dt
import hashlib
import os

import pytest
from sqlalchemy import select, update

from backend.config import PeerConfig, PrimaryConfig
from backend.db.primary_schema import GeoEvent, Namespace, Project
from backend.framework.checksum import size_checksum
from backend.framework.clock import clock
from backend.framework.replicator import FileStore
from backend.replicables import replicator_for
from backend.framework.states import VerificationState
from backend.primary import events
from backend.primary.catalog import CatalogError
from backend.primary.checksummer import Checksummer
from backend.primary.storage import ObjectStorageNotConfigured
from backend.sites.primary import PrimarySite
from tests.support.sites import object_store
from backend.primary.verification_store import PrimaryVerificationStore

CoolWidgets = replicator_for("cool_widget")
PackageFiles = replicator_for("package_file")


@pytest.fixture(params=["state_table", "model_columns"])
def replicator(request):
    return CoolWidgets if request.param == "state_table" else PackageFiles


@pytest.fixture
def site(primary_url, tmp_path):
    peers = (PeerConfig("s1", "", "key", "s" * 32),)
    site = PrimarySite(PrimaryConfig(primary_url, str(tmp_path / "blobs"), "127.0.0.1:0", 7,
                                     peers))
    yield site
    site.engine.dispose()


def event_names(site):
    with site.engine.connect() as connection:
        return [row[0] for row in connection.execute(
            select(GeoEvent.event_name).order_by(GeoEvent.id))]


def test_namespace_paths_become_a_tree(site):
    catalog = site.catalog()
    leaf = catalog.ensure_namespace_path("group/sub/leaf")
    assert catalog.ensure_namespace_path("group/sub/leaf") == leaf
    with site.engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(Namespace))}
    assert rows[leaf].name == "leaf"
    assert rows[rows[leaf].parent_id].name == "sub"
    assert rows[rows[rows[leaf].parent_id].parent_id].parent_id is None


@pytest.mark.parametrize("path", ["", "/", "a//b"])
def test_bad_namespace_paths_are_refused(site, path):
    with pytest.raises(CatalogError):
        site.catalog().ensure_namespace_path(path)


def test_project_records_its_shard(site):
    project_id = site.catalog().add_project("api", "acme", shard="ssd")
    with site.engine.connect() as connection:
        assert connection.execute(select(Project.repository_storage)
                                  .where(Project.id == project_id)).scalar() == "ssd"


def test_add_stores_file_publishes_created_and_queues_checksum(site, replicator, tmp_path):
    source = tmp_path / "report.pdf"
    source.write_bytes(b"hello widget")
    model_id = site.catalog(replicator).add_file(source)
    row = site.catalog(replicator).list()[0]
    assert row["id"] == model_id and row["size"] == 12
    assert row["verification_state"] == VerificationState.PENDING
    path, _ = site.blob_path(replicator, model_id)
    assert path.read_bytes() == b"hello widget" and path.name == "report.pdf"
    assert event_names(site) == ["created"]


def test_add_to_unknown_project_changes_nothing(site, tmp_path):
    source = tmp_path / "a"
    source.write_bytes(b"x")
    with pytest.raises(CatalogError, match="project 42 does not exist"):
        site.catalog().add_file(source, project_id=42)
    assert site.catalog().count() == 0 and event_names(site) == []


def test_delete_publishes_blob_path_and_removes_file(site, replicator):
    catalog = site.catalog(replicator)
    model_id = catalog.add_bytes(b"data", "d.bin")
    path, relative = site.blob_path(replicator, model_id)
    catalog.delete([model_id])
    assert not path.exists() and catalog.count() == 0
    with site.engine.connect() as connection:
        payload = connection.execute(select(GeoEvent.payload)
                                     .where(GeoEvent.event_name == "deleted")).scalar_one()
    assert payload["model_record_id"] == model_id and payload["blob_path"] == relative


def test_delete_with_an_unknown_id_changes_nothing(site):
    catalog = site.catalog()
    model_id = catalog.add_bytes(b"data", "d.bin")
    with pytest.raises(CatalogError, match="999"):
        catalog.delete([model_id, 999])
    assert catalog.count() == 1


def test_no_events_without_secondaries(primary_url, tmp_path):
    site = PrimarySite(PrimaryConfig(primary_url, str(tmp_path / "b")))
    site.catalog().add_bytes(b"x", "x")
    assert events.count(site.engine) == 0
    site.engine.dispose()


def test_no_events_when_replication_flag_is_off(primary_url, tmp_path):
    site = PrimarySite(PrimaryConfig(primary_url, str(tmp_path / "b"), secondaries=(
        PeerConfig("s", "", "k", "s" * 32),)), {"geo_cool_widget_replication": False})
    site.catalog().add_bytes(b"x", "x")
    assert events.count(site.engine) == 0
    assert site.verification_enabled() == [PackageFiles]  # only its own type stops
    site.engine.dispose()


def test_checksummer_records_sha256_and_publishes(site, replicator):
    data = os.urandom(3000)
    model_id = site.catalog(replicator).add_bytes(data, "x.bin")
    assert Checksummer(site).run_once()
    row = site.catalog(replicator).list()[0]
    assert row["verification_state"] == VerificationState.SUCCEEDED
    assert row["verification_checksum"] == hashlib.sha256(data).hexdigest().encode()
    assert event_names(site) == ["created", "checksum_succeeded"]
    assert model_id == row["id"]


def test_object_storage_checksum_is_the_formatted_size_when_asked(primary_url, tmp_path,
                                                                    s3_server):
    """object_storage_verification = "size": GitLab's checksum of object-stored blobs."""
    config = PrimaryConfig(primary_url, str(tmp_path / "blobs"), "127.0.0.1:0", 7,
                           (PeerConfig("s1", "", "key", "s" * 32),),
                           object_store=object_store(s3_server),
                           object_storage_verification="size")
    site = PrimarySite(config)
    try:
        site.catalog().add_bytes(b"x" * 12345, "remote.bin", file_store=FileStore.REMOTE)
        Checksummer(site).run_once()
        assert site.catalog().list()[0]["verification_checksum"] == b"012345"
        assert size_checksum(1234) == "1234"
    finally:
        site.engine.dispose()


def test_object_storage_is_refused_without_a_bucket(site):
    with pytest.raises(ObjectStorageNotConfigured, match="not configured"):
        site.catalog().add_bytes(b"x", "remote.bin", file_store=FileStore.REMOTE)
    assert site.catalog().count() == 0


def test_missing_file_fails_checksum_with_backoff(site, replicator):
    model_id = site.catalog(replicator).add_bytes(b"abc", "x.bin")
    site.blob_path(replicator, model_id)[0].unlink()
    Checksummer(site).run_once()
    store = PrimaryVerificationStore(site.engine, replicator)
    with site.engine.connect() as connection:
        row = connection.execute(select(store.table).where(store.key == model_id)).mappings().one()
    assert row["verification_state"] == VerificationState.FAILED
    assert row["verification_failure"].startswith("Error during verification: ")
    assert row["verification_retry_count"] == 1 and row["verification_retry_at"]
    assert store.claim_batch(10) == []  # not due yet
    clock.advance(dt.timedelta(minutes=2))
    assert [c.model_id for c in store.claim_batch(10)] == [model_id]


def test_old_checksums_are_reverified_after_the_interval(site, replicator):
    site.catalog(replicator).add_bytes(b"abc", "x.bin")
    Checksummer(site).run_once()
    store = PrimaryVerificationStore(site.engine, replicator)
    assert store.request_reverification(interval_days=7) == 0
    clock.advance(dt.timedelta(days=7, minutes=1))
    assert store.request_reverification(interval_days=7) == 1
    assert site.catalog(replicator).list()[0]["verification_state"] == VerificationState.PENDING


def test_stuck_checksums_time_out_after_eight_hours(site, replicator):
    site.catalog(replicator).add_bytes(b"abc", "x.bin")
    store = PrimaryVerificationStore(site.engine, replicator)
    store.claim_batch(10)
    clock.advance(dt.timedelta(hours=8, minutes=1))
    assert store.fail_timed_out() == 1
    assert site.catalog(replicator).list()[0]["verification_state"] == VerificationState.FAILED


def test_state_rows_are_backfilled(site):
    catalog = site.catalog()
    catalog.add_bytes(b"a", "a")
    store = PrimaryVerificationStore(site.engine, CoolWidgets)
    with site.engine.begin() as connection:
        connection.execute(store.table.delete())
    assert store.backfill_state_rows() == 1
    assert catalog.list()[0]["verification_state"] == VerificationState.PENDING


def test_restarted_checksum_does_not_take_an_old_result(site, replicator):
    site.catalog(replicator).add_bytes(b"abc", "x.bin")
    store = PrimaryVerificationStore(site.engine, replicator)
    old = store.claim_batch(1)[0]
    with site.engine.begin() as connection:
        connection.execute(update(store.table).values(verification_state=0))
    clock.advance(dt.timedelta(seconds=1))
    store.claim_batch(1)
    with site.engine.begin() as connection:
        assert store.mark_succeeded(connection, old, "ff") is False


def test_counts(site, replicator):
    catalog = site.catalog(replicator)
    for index in range(3):
        catalog.add_bytes(b"x%d" % index, "x")
    site.blob_path(replicator, 1)[0].unlink()
    Checksummer(site).run_once()
    counts = PrimaryVerificationStore(site.engine, replicator).counts()
    assert counts == {"checksum_total": 3, "checksummed": 2, "checksum_failed": 1}


def test_the_blob_lookup_answers_like_the_sqlalchemy_query(site, replicator):
    """replicables_query.blob runs a statement compiled once straight on the
    DBAPI connection: same row as the states query, the checksum as text,
    None for an unknown id, and no transaction left open on the connection
    it gives back (PostgreSQL: autocommit restored, nothing in progress)."""
    from backend.primary import replicables_query
    catalog = site.catalog(replicator)
    model_id = catalog.add_bytes(b"lookup", "l.bin")
    Checksummer(site).run_once()
    for _ in range(3):  # the second and third reuse the compiled statement
        row = replicables_query.blob(site.engine, replicator, model_id)
        described = replicables_query.states(site.engine, replicator, [model_id])[model_id]
        assert {k: v for k, v in row.items() if k != "file"} == \
            {k: v for k, v in described.items() if k in row}
        assert row["checksum"] == hashlib.sha256(b"lookup").hexdigest()
        assert site.storage.path(row["file"]).read_bytes() == b"lookup"
    assert replicables_query.blob(site.engine, replicator, model_id + 1000) is None
    idle = [site.engine.raw_connection() for _ in range(site.engine.pool.checkedin())]
    try:
        for raw in idle:  # every connection the pool holds, the lookup's among them
            if site.engine.dialect.name == "postgresql":
                import psycopg2.extensions
                assert raw.driver_connection.autocommit is False
                assert raw.driver_connection.info.transaction_status == \
                    psycopg2.extensions.TRANSACTION_STATUS_IDLE
            else:
                assert raw.driver_connection.in_transaction is False
    finally:
        for raw in idle:
            raw.close()


def test_the_primary_describes_each_record_for_the_secondaries(site, replicator):
    """list_range and states say what each record is: the file's name, its
    project's full path through nested groups, and the project's shard."""
    from backend.framework.scope import SyncScope
    from backend.primary import replicables_query
    catalog = site.catalog(replicator)
    plain = catalog.add_bytes(b"plain", "notes.txt")  # in the default project
    project = catalog.add_project("api", "acme/platform/backend", shard="ssd")
    model_id = catalog.add_bytes(b"described", "release-1.2.tar.gz", project_id=project)
    Checksummer(site).run_once()
    listed = {row["id"]: row for row in replicables_query.list_range(
        site.engine, replicator, SyncScope(), 0)["replicables"]}
    described = replicables_query.states(site.engine, replicator, [model_id, plain])
    for rows in (listed, described):
        row = rows[model_id]
        assert row["file_name"] == "release-1.2.tar.gz"
        assert row["project_id"] == project
        assert row["project_path"] == "acme/platform/backend/api"
        assert row["shard"] == "ssd" and row["size"] == len(b"described")
        assert row["checksum"] == hashlib.sha256(b"described").hexdigest()
        assert rows[plain]["file_name"] == "notes.txt" and rows[plain]["shard"] == "default"
        assert rows[plain]["project_path"] == "default/default"
