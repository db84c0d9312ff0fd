"""Object storage through the S3 protocol, on both sites, against a real
S3-protocol server on loopback (moto's, its own process): the primary
stores and checksums object-stored blobs in its bucket and redirects to
presigned URLs (or streams them with proxy_download); the secondary
replicates them into its own bucket or onto its disk, verifies them,
propagates deletions and replaces a corrupted replica. Every database
test runs on SQLite and PostgreSQL tracking databases.

moto checks no checksum it is sent (tests/support/s3_server.py), so what
these tests prove about mismatching bytes is the secondary's own check:
it hashes every byte before the object is written.
"""
import dataclasses
import datetime as dt
import hashlib
import os
import time
import urllib.parse

import pytest

from backend.framework.clock import clock
from backend.framework.replicator import FileStore
from backend.framework.states import SyncState, VerificationState
from backend.object_store import bucket as bucket_module
from backend.object_store.errors import ObjectStoreError
from backend.replicables import replicator_for
from backend.secondary import downloader as downloader_module
from backend.secondary.registry_actions import RegistryActions
from backend.secondary.registry_selection import RegistrySelection
from tests.support.delay_proxy import DelayProxy
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import object_store as sites_object_store
from tests.support.sites import (secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
PackageFiles = replicator_for("package_file")
pytestmark = pytest.mark.slow
MiB = 1 << 20


# Every bucket here takes uploads over 6 MiB in parts (of 6 MiB), so that
# blobs of a few MiB take the large-object paths.
PARTS_FROM = {"multipart_threshold_mb": 6}


def object_store(server, bucket=None, **options):
    return sites_object_store(server, bucket, **{**PARTS_FROM, **options})


@pytest.fixture
def small_parts(monkeypatch):
    """Object-stored blobs stay in memory only up to 1 MiB, then spill."""
    monkeypatch.setattr(downloader_module, "OBJECT_BUFFER_LIMIT", 1 * MiB)


@pytest.fixture
def sites(primary_url, tracking_url, tmp_path, credentials, s3_server):
    """A primary with object storage, and a way to start its secondary."""
    primary = start_primary(primary_url, tmp_path / "primary", credentials,
                            object_store=object_store(s3_server))
    started = []

    def secondary(**overrides):
        overrides.setdefault("sync_object_storage", True)
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials, **overrides)
        engine = start_engine(config)
        started.append(engine)
        return engine

    yield primary, secondary
    for engine in started:
        engine.stop()
    primary.stop()


def objects(s3_server, bucket: str) -> dict[str, bytes]:
    s3 = s3_server.client()
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for item in listed}


def replica_key(model_id: int, replicator=CoolWidgets) -> str:
    return f"{replicator.plural_name}/0/{model_id}"


def add_remote(primary, blobs: list[bytes], replicator=CoolWidgets) -> list[int]:
    catalog = primary.catalog(replicator)
    return [catalog.add_bytes(data, f"o{index}.bin", file_store=FileStore.REMOTE)
            for index, data in enumerate(blobs)]


def test_object_stored_blobs_replicate_into_the_secondary_bucket(sites, s3_server,
                                                                 small_parts):
    primary, secondary = sites
    blobs = [b"", b"tiny", os.urandom(300_000), os.urandom(2 * MiB), os.urandom(13 * MiB)]
    ids = add_remote(primary, blobs)
    local_id = primary.catalog().add_bytes(b"kept on disk", "local.bin")
    package_ids = add_remote(primary, [b"a package"], PackageFiles)
    # The primary checksums object-stored blobs by SHA-256: the one the
    # service stored with the object, or the object read through the hash
    # when it went up in parts.
    wait_for_checksums(primary)
    wait_for_checksums(primary, PackageFiles)
    states = {row["id"]: row["verification_checksum"] for row in primary.catalog().list()}
    for model_id, data in zip(ids, blobs):
        assert states[model_id] == hashlib.sha256(data).hexdigest().encode()

    target = s3_server.make_bucket()
    engine = secondary(object_store=object_store(s3_server, target))
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids + [local_id])
               and all_synced_and_verified(engine, PackageFiles, package_ids), timeout=60,
               message="every blob synced and verified")

    stored = objects(s3_server, target)
    expected = {replica_key(model_id): data for model_id, data in zip(ids, blobs)}
    expected[replica_key(package_ids[0], PackageFiles)] = b"a package"
    assert stored == expected  # byte for byte, and nothing else in the bucket
    # The local blob is a file; object-stored ones left no file behind.
    assert engine.storage.path(CoolWidgets, local_id).read_bytes() == b"kept on disk"
    assert not engine.storage.path(CoolWidgets, ids[0]).exists()
    assert engine.storage.temporary_files() == []
    assert s3_server.client().list_multipart_uploads(Bucket=target).get("Uploads", []) == []

    status = engine.status()
    assert status["cool_widgets_object_storage_count"] == len(ids)
    assert status["cool_widgets_object_storage_synced_count"] == len(ids)
    assert primary.rest_status()["cool_widgets_object_storage_count"] == len(ids)


def test_without_a_secondary_bucket_object_stored_blobs_land_on_disk(sites, small_parts):
    primary, secondary = sites
    blobs = [b"first", os.urandom(9 * MiB)]
    ids = add_remote(primary, blobs)
    wait_for_checksums(primary)
    engine = secondary()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=60,
               message="synced onto disk")
    for model_id, data in zip(ids, blobs):
        assert engine.storage.path(CoolWidgets, model_id).read_bytes() == data


def test_without_sync_object_storage_object_stored_blobs_are_not_registered(sites):
    primary, secondary = sites
    add_remote(primary, [b"in the bucket"])
    local_id = primary.catalog().add_bytes(b"on disk", "l.bin")
    wait_for_checksums(primary)
    engine = secondary(sync_object_storage=False)
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [local_id]), timeout=30,
               message="the local blob synced")
    time.sleep(2.5)  # consistency walks every second here: two more at least
    assert set(registries(engine, CoolWidgets)) == {local_id}


def test_deletions_propagate_to_the_bucket(sites, s3_server):
    primary, secondary = sites
    ids = add_remote(primary, [b"goes", b"stays"])
    wait_for_checksums(primary)
    target = s3_server.make_bucket()
    engine = secondary(object_store=object_store(s3_server, target))
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
               message="synced")
    keys = {row["id"]: row["file"] for row in primary.catalog().list()}
    primary.catalog().delete([ids[0]])
    assert set(objects(s3_server, primary.bucket.name)) == {keys[ids[1]]}  # went with it
    wait_until(lambda: set(objects(s3_server, target)) == {replica_key(ids[1])}, timeout=30,
               message="the replica object removed")
    assert set(registries(engine, CoolWidgets)) == {ids[1]}


@pytest.mark.parametrize("size", [1000, 8 * MiB], ids=["one PUT", "in parts"])
def test_a_corrupted_replica_object_is_found_and_replaced(sites, s3_server, small_parts,
                                                          size):
    primary, secondary = sites
    data = os.urandom(size)
    [model_id] = add_remote(primary, [data])
    wait_for_checksums(primary)
    target = s3_server.make_bucket()
    engine = secondary(object_store=object_store(s3_server, target))
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [model_id]), timeout=30,
               message="synced")
    # Someone overwrites the replica: one byte flipped, the same size.
    corrupt = bytes([data[0] ^ 0xFF]) + data[1:]
    s3_server.client().put_object(Bucket=target, Key=replica_key(model_id), Body=corrupt)
    RegistryActions(engine.engine, CoolWidgets).reverify(RegistrySelection(ids=(model_id,)))
    engine.wake()

    def found():
        row = registries(engine, CoolWidgets)[model_id]
        return row["verification_state"] == VerificationState.FAILED

    wait_until(found, timeout=30, message="the corruption found")
    row = registries(engine, CoolWidgets)[model_id]
    assert row["state"] == SyncState.FAILED
    assert row["verification_failure"].startswith("Checksum does not match the primary")
    clock.advance(dt.timedelta(minutes=2))  # past the backoff of a first failure
    engine.wake()
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [model_id]), timeout=30,
               message="downloaded again")
    assert objects(s3_server, target)[replica_key(model_id)] == data


def test_an_object_whose_bytes_differ_from_the_primary_checksum_is_never_synced(
        sites, s3_server, small_parts):
    """The primary's object changes after it was checksummed: the secondary
    downloads bytes that do not match, so nothing appears under the
    replica's key and the registry fails, in memory and spilled alike."""
    primary, secondary = sites
    blobs = [b"original small", os.urandom(3 * MiB)]
    ids = add_remote(primary, blobs)
    wait_for_checksums(primary)
    s3 = s3_server.client()
    for row in primary.catalog().list():
        s3.put_object(Bucket=primary.bucket.name, Key=row["file"], Body=b"tampered")
    target = s3_server.make_bucket()
    engine = secondary(object_store=object_store(s3_server, target))

    def both_failed():
        rows = registries(engine, CoolWidgets)
        return set(rows) == set(ids) and all(r["state"] == SyncState.FAILED
                                             for r in rows.values())

    wait_until(both_failed, timeout=30, message="both syncs failed")
    for row in registries(engine, CoolWidgets).values():
        assert row["last_sync_failure"] == "Downloaded file checksum mismatch"
    assert objects(s3_server, target) == {}
    assert s3.list_multipart_uploads(Bucket=target).get("Uploads", []) == []


def test_the_secondary_follows_the_presigned_url_byte_for_byte_without_credentials(
        primary_url, tracking_url, tmp_path, credentials, s3_server):
    """The primary answers with a presigned URL; the secondary fetches it
    without its GL-Geo header, and as the primary signed it: yarl would
    otherwise decode %2F, %3D or %40 and break the signature of a service
    that checks it (moto does not, so the request itself is looked at)."""
    recorder = DelayProxy(int(s3_server.endpoint.rsplit(":", 1)[1]), delay=0.0)
    store = object_store(s3_server)
    store = dataclasses.replace(store, connection=dataclasses.replace(
        store.connection, endpoint=f"http://127.0.0.1:{recorder.port}"))
    primary = start_primary(primary_url, tmp_path / "primary", credentials,
                            object_store=store)
    try:
        name = "odd=name@x:y!$&'()*+,;~ é.bin"
        model_id = primary.catalog().add_bytes(b"signed bytes", name,
                                               file_store=FileStore.REMOTE)
        wait_for_checksums(primary)
        key = primary.catalog().list()[0]["file"]
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials, sync_object_storage=True)
        engine = start_engine(config)
        try:
            wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [model_id]),
                       timeout=30, message="synced through the presigned URL")
        finally:
            engine.stop()
        assert engine.storage.path(CoolWidgets, model_id).read_bytes() == b"signed bytes"
    finally:
        primary.stop()
        recorder.stop()
    fetched = [head.decode("utf-8") for head in recorder.heads
               if head.startswith(b"GET ") and b"X-Amz-Signature=" in head]
    assert len(fetched) == 1, recorder.heads
    request_line, *headers = fetched[0].split("\r\n")
    target = request_line.split(" ")[1]
    path, _, query = target.partition("?")
    assert path == f"/{primary.bucket.name}/" + urllib.parse.quote(key, safe="/~")
    assert "X-Amz-Credential=" in query and "%2F" in query.split("X-Amz-Credential=")[1]
    assert not any(header.lower().startswith("authorization:") for header in headers)


def test_proxy_download_streams_through_the_primary(primary_url, tracking_url, tmp_path,
                                                    credentials, s3_server, small_parts):
    primary = start_primary(primary_url, tmp_path / "primary", credentials,
                            object_store=object_store(s3_server, proxy_download=True))
    try:
        blobs = [b"through the primary", os.urandom(3 * MiB)]
        ids = add_remote(primary, blobs)
        wait_for_checksums(primary)
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials, sync_object_storage=True)
        engine = start_engine(config)
        try:
            wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=30,
                       message="synced through the primary")
            for model_id, data in zip(ids, blobs):
                assert engine.storage.path(CoolWidgets, model_id).read_bytes() == data
        finally:
            engine.stop()
    finally:
        primary.stop()


def test_size_verification_checksums_and_verifies_by_size(primary_url, tracking_url,
                                                          tmp_path, credentials, s3_server):
    """object_storage_verification = "size": GitLab's behaviour, for very
    large buckets; the secondary then verifies its replicas by size too."""
    primary = start_primary(primary_url, tmp_path / "primary", credentials,
                            object_store=object_store(s3_server),
                            object_storage_verification="size")
    try:
        [model_id] = add_remote(primary, [b"x" * 12345])
        wait_for_checksums(primary)
        assert primary.catalog().list()[0]["verification_checksum"] == b"012345"
        target = s3_server.make_bucket()
        config = secondary_config(primary.url, tracking_url, tmp_path / "secondary",
                                  credentials, sync_object_storage=True,
                                  object_store=object_store(s3_server, target))
        engine = start_engine(config)
        try:
            wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, [model_id]),
                       timeout=30, message="verified by size")
            assert registries(engine, CoolWidgets)[model_id]["verification_checksum"] == \
                b"012345"
        finally:
            engine.stop()
    finally:
        primary.stop()


def test_abandoned_multipart_uploads_are_aborted_when_the_engine_starts(sites, s3_server):
    primary, secondary = sites
    target = s3_server.make_bucket()
    s3 = s3_server.client()
    mine = s3.create_multipart_upload(Bucket=target, Key=replica_key(7))["UploadId"]
    foreign = s3.create_multipart_upload(Bucket=target, Key="backups/db.tar")["UploadId"]
    secondary(object_store=object_store(s3_server, target))
    left = {upload["UploadId"] for upload in
            s3.list_multipart_uploads(Bucket=target).get("Uploads", [])}
    assert mine not in left
    assert foreign in left  # not a replica key: not this secondary's to abort


# --- the bucket's answers, one sentence each --------------------------------------------------

def test_a_missing_bucket_is_one_clear_error(s3_server):
    bucket = bucket_module.Bucket(object_store(s3_server, "no-such-bucket-here"))
    with pytest.raises(ObjectStoreError) as caught:
        bucket.check()
    assert str(caught.value) == (f"the bucket no-such-bucket-here at {s3_server.endpoint} "
                                 "does not exist")


def test_an_endpoint_that_does_not_answer_is_one_clear_error(s3_server):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = object_store(s3_server, "geo-blobs")
    config = dataclasses.replace(config, connection=dataclasses.replace(
        config.connection, endpoint=f"http://127.0.0.1:{port}"))
    bucket = bucket_module.Bucket(config, timeout=2)
    with pytest.raises(ObjectStoreError) as caught:
        bucket.check()
    assert str(caught.value) == (f"cannot reach the bucket geo-blobs at http://127.0.0.1:"
                                 f"{port}: no answer at its endpoint")


def test_wrong_credentials_are_one_clear_error_without_the_secret(s3_auth_server):
    bucket_name = s3_auth_server.make_bucket()
    key_id, secret = s3_auth_server.create_access_key("geo-wrong")
    bucket = bucket_module.Bucket(object_store(s3_auth_server, bucket_name,
                                               access_key=(key_id, "x" * 40)))
    with pytest.raises(ObjectStoreError) as caught:
        bucket.check()
    assert caught.value.credentials
    message = str(caught.value)
    assert message.startswith(f"the object store refused the credentials for the bucket "
                              f"{bucket_name}")
    assert secret not in message and "x" * 40 not in message


def test_keys_that_a_url_would_resolve_are_refused(s3_server, s3_bucket):
    bucket = bucket_module.Bucket(object_store(s3_server, s3_bucket))
    for key in ("../other-bucket/key", "a/./b", "/rooted", "a//b", ""):
        with pytest.raises(ObjectStoreError, match="is not a valid key"):
            bucket.presigned_url(key)
