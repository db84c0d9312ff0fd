"""A bad day for object storage: the S3 service answers 5xx, resets and
stalls; the engine is SIGKILLed in the middle of a multipart upload; the
credentials are revoked under a running engine; the configuration names a
bucket, endpoint or key that does not work. Against moto's S3 server on
loopback, through a fault proxy where faults are needed, on SQLite and
PostgreSQL tracking databases.
"""
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine

from backend.config import load_config
from backend.framework.clock import clock
from backend.framework.replicator import FileStore
from backend.framework.states import SyncState
from backend.replicables import replicator_for
from backend.sites.secondary import SecondarySite
from tests.support.delay_proxy import DelayProxy
from tests.support.fault_proxy import FaultProxyProcess
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import (object_store, secondary_config, start_engine, start_primary,
                                 wait_for_checksums, wait_until)

CoolWidgets = replicator_for("cool_widget")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
pytestmark = pytest.mark.slow

# What a registry may say while the service misbehaves: one sentence each,
# no exception class name.
WHERE = r"cool_widgets/0/\d+ in bucket \S+ at \S+"
READABLE = re.compile(r"Error uploading the replica: (" + "|".join((
    rf"the object store is overloaded \(503 [A-Za-z ]+\) at {WHERE}",
    rf"the object store failed \(50[0-4] [A-Za-z ]+\) at {WHERE}",
    r"the bucket \S+ at \S+ (closed the connection|did not answer in time|failed: .+)",
    r"cannot reach the bucket \S+ at \S+: no answer at its endpoint",
)) + ")")


@pytest.fixture
def primary(primary_url, tmp_path, credentials, s3_server):
    site = start_primary(primary_url, tmp_path / "primary", credentials,
                         object_store=object_store(s3_server))
    yield site
    site.stop()


def add_remote(primary, blobs):
    catalog = primary.catalog()
    return [catalog.add_bytes(data, f"o{i}.bin", file_store=FileStore.REMOTE)
            for i, data in enumerate(blobs)]


def replica(s3_server, bucket, model_id):
    return s3_server.client().get_object(
        Bucket=bucket, Key=f"cool_widgets/0/{model_id}")["Body"].read()


def with_endpoint(config, endpoint):
    import dataclasses
    return dataclasses.replace(config, connection=dataclasses.replace(
        config.connection, endpoint=endpoint))


def secondary_toml(primary, credentials, tracking_url, base, bucket, endpoint, key_id,
                   secret, parts_from_mb: int = 64) -> str:
    """A secondary's configuration file replicating into `bucket`."""
    return f"""[secondary]
name = "secondary-1"
primary_url = "{primary.url}"
access_key = "{credentials['access_key']}"
secret = "{credentials['secret']}"
tracking_database_url = "{tracking_url}"
storage_path = "{base / 'secondary'}"
listen = "127.0.0.1:0"
sync_object_storage = true
status_interval = 2
[secondary.object_store]
enabled = true
bucket = "{bucket}"
multipart_threshold_mb = {parts_from_mb}
[secondary.object_store.connection]
endpoint = "{endpoint}"
path_style = true
aws_access_key_id = "{key_id}"
aws_secret_access_key = "{secret}"
"""


def test_engine_survives_a_faulty_object_store(primary, tracking_url, tmp_path, credentials,
                                               s3_server):
    """Random errors, resets and stalls are mostly absorbed by boto3's
    retries; a service that answers nothing but 503 (or stalls every
    answer) fails the registries, which back off, until it recovers."""
    blobs = [os.urandom(size) for size in [0, 1, 5000, 200_000] * 10]
    ids = add_remote(primary, blobs)
    wait_for_checksums(primary)
    target = s3_server.make_bucket()
    proxy = FaultProxyProcess(s3_server.endpoint, seed=17, stall=3.0, flip_paths="/never/")
    try:
        proxy.send("on")
        config = secondary_config(
            primary.url, tracking_url, tmp_path / "secondary", credentials,
            sync_object_storage=True, request_timeout=2.0,
            object_store=with_endpoint(object_store(s3_server, target), proxy.url))
        engine = start_engine(config)
        try:
            def some_failed():
                rows = registries(engine, CoolWidgets)
                return sum(r["state"] == SyncState.FAILED for r in rows.values()) >= 3

            wait_until(lambda: len(registries(engine, CoolWidgets)) == len(ids), timeout=60,
                       message="registries for every blob")
            time.sleep(4)  # random faults meanwhile, most of them retried away
            proxy.send("only error")
            wait_until(some_failed, timeout=60, message="syncs failing on the faulty bucket")
            proxy.send("only stall")
            time.sleep(3)
            assert engine.running
            reasons = {r["last_sync_failure"] for r in registries(engine, CoolWidgets).values()
                       if r["state"] == SyncState.FAILED}
            for reason in reasons:
                assert READABLE.fullmatch(reason), reason
                assert "Error(" not in reason and "Exception" not in reason
            failed = [r for r in registries(engine, CoolWidgets).values()
                      if r["state"] == SyncState.FAILED]
            assert all(r["retry_at"] is not None and r["retry_count"] >= 1 for r in failed)
            proxy.send("off")
            # Syncs stalled meanwhile fail only now: past their backoff too.
            wait_until(lambda: not any(r["state"] == SyncState.STARTED for r in
                                       registries(engine, CoolWidgets).values()),
                       timeout=60, message="the stalled syncs ended")
            clock.advance(dt.timedelta(hours=2))  # past every backoff
            engine.wake()
            wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, ids), timeout=90,
                       message="everything synced once the faults stop")
            assert engine.running
        finally:
            engine.stop()
    finally:
        proxy.stop()
    for model_id, data in zip(ids, blobs):
        assert replica(s3_server, target, model_id) == data


def test_sigkill_during_a_multipart_upload_leaves_nothing_behind(
        primary, tracking_url, tmp_path, credentials, s3_server):
    """A blob over the multipart threshold (8 MiB here) goes up in parts;
    killed mid-way, the engine leaves no visible object, and the next start
    aborts the upload before it syncs the blob again."""
    data = os.urandom(30 * MiB)
    [model_id] = add_remote(primary, [data])
    wait_for_checksums(primary, timeout=60)
    target = s3_server.make_bucket()
    s3 = s3_server.client()
    slow = DelayProxy(int(s3_server.endpoint.rsplit(":", 1)[1]), delay=0.3)
    store = object_store(s3_server, target)

    def config_file(endpoint):
        path = tmp_path / "secondary.toml"
        path.write_text(secondary_toml(primary, credentials, tracking_url, tmp_path, target,
                                       endpoint, store.connection.aws_access_key_id,
                                       store.connection.aws_secret_access_key,
                                       parts_from_mb=8))
        return [sys.executable, "main.py", "secondary", "run", "--config", str(path)]

    def uploads():
        return s3.list_multipart_uploads(Bucket=target).get("Uploads", [])

    def part_uploaded():
        """An upload with at least one part in: killed mid-way."""
        return any(s3.list_parts(Bucket=target, Key=upload["Key"],
                                 UploadId=upload["UploadId"]).get("Parts")
                   for upload in uploads())

    try:
        process = subprocess.Popen(config_file(f"http://127.0.0.1:{slow.port}"), cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: part_uploaded() or process.poll() is not None, timeout=60,
                       interval=0.05, message="a multipart upload under way")
            assert process.poll() is None, process.stderr.read().decode()
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        assert len(uploads()) == 1
        assert s3.list_objects_v2(Bucket=target).get("KeyCount") == 0  # nothing visible
    finally:
        slow.stop()
    final = subprocess.Popen(config_file(s3_server.endpoint), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        tracking = create_engine(tracking_url)
        wait_until(lambda: all_synced_and_verified(tracking, CoolWidgets, [model_id]),
                   timeout=120, interval=0.5, message="synced after the restart")
        tracking.dispose()
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(timeout=60)
    assert b"Traceback" not in final.stderr.read()
    assert uploads() == []
    assert replica(s3_server, target, model_id) == data


# The credentials are the bucket's business, not the tracking database's.
@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_revoked_credentials_fail_clearly_then_recover_once_fixed(
        primary, tracking_url, tmp_path, credentials, s3_server, s3_auth_server):
    """The secondary's key is deleted under its running engine: syncs fail
    saying the credentials were refused; a new key written into the
    configuration file is taken up without a restart."""
    target = s3_auth_server.make_bucket()
    old_id, old_secret = s3_auth_server.create_access_key("geo-secondary")
    path = tmp_path / "secondary.toml"

    def write(key_id, secret):
        path.write_text(secondary_toml(primary, credentials, tracking_url, tmp_path, target,
                                       s3_auth_server.endpoint, key_id, secret))

    write(old_id, old_secret)
    config = load_config(path)
    site = SecondarySite.from_config(
        config, poll_interval=0.1, consistency_interval=1.0,
        object_store_source=lambda: load_config(path).require_secondary().object_store
        .connection)
    site.start(serve=False)
    engine = site.engine
    try:
        first = add_remote(primary, [b"before the rotation"])
        wait_for_checksums(primary)
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, first), timeout=30,
                   message="synced with the first key")
        s3_auth_server.delete_access_key("geo-secondary", old_id)
        second = add_remote(primary, [b"after the rotation"])
        wait_for_checksums(primary)

        def refused():
            row = registries(engine, CoolWidgets).get(second[0])
            return row is not None and row["state"] == SyncState.FAILED

        wait_until(refused, timeout=30, message="the sync refused")
        reason = registries(engine, CoolWidgets)[second[0]]["last_sync_failure"]
        assert reason.startswith("Error uploading the replica: the object store refused the "
                                 f"credentials for the bucket {target}"), reason
        assert "InvalidAccessKeyId" in reason and old_secret not in reason
        assert engine.running
        new_id, new_secret = s3_auth_server.create_access_key("geo-secondary")
        write(new_id, new_secret)
        clock.advance(dt.timedelta(minutes=2))
        engine.wake()
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, first + second),
                   timeout=30, message="synced again with the new key")
    finally:
        site.stop()
    s3 = s3_auth_server.client()
    assert s3.get_object(Bucket=target, Key=f"cool_widgets/0/{second[0]}")["Body"].read() == \
        b"after the rotation"


# --- a configuration that cannot work: one line at start, nothing written -----------------

def run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def cli_config(tmp_path, s3_server, bucket, endpoint=None, key=None) -> str:
    store = object_store(s3_server, bucket, access_key=key)
    path = tmp_path / "geo.toml"
    path.write_text(f"""[primary]
database_url = "sqlite:///{tmp_path / 'primary.db'}"
storage_path = "{tmp_path / 'primary'}"
listen = "127.0.0.1:0"
[primary.object_store]
enabled = true
bucket = "{bucket}"
multipart_threshold_mb = 8
[primary.object_store.connection]
endpoint = "{endpoint or s3_server.endpoint}"
path_style = true
aws_access_key_id = "{store.connection.aws_access_key_id}"
aws_secret_access_key = "{store.connection.aws_secret_access_key}"

[secondary]
name = "s"
primary_url = "http://127.0.0.1:9"
access_key = "k"
secret = "{'s' * 40}"
tracking_database_url = "sqlite:///{tmp_path / 'tracking.db'}"
storage_path = "{tmp_path / 'secondary'}"
listen = "127.0.0.1:0"
sync_object_storage = true
[secondary.object_store]
enabled = true
bucket = "{bucket}"
[secondary.object_store.connection]
endpoint = "{endpoint or s3_server.endpoint}"
path_style = true
aws_access_key_id = "{store.connection.aws_access_key_id}"
aws_secret_access_key = "{store.connection.aws_secret_access_key}"
""")
    return str(path)


def assert_refused_at_start(tmp_path, config, expected, secret=None):
    for command in (["primary", "serve"], ["secondary", "run"]):
        result = run_cli(*command, "--config", config)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("geo-console: error: "), result.stderr
        assert re.search(expected, lines[0]), lines[0]
        assert "Traceback" not in result.stderr and "Error:" not in lines[0]
        assert secret is None or secret not in result.stderr + result.stdout
    assert not (tmp_path / "primary.db").exists() and not (tmp_path / "tracking.db").exists()


def test_a_missing_bucket_is_refused_at_start(tmp_path, s3_server):
    assert_refused_at_start(tmp_path, cli_config(tmp_path, s3_server, "no-such-bucket"),
                            r"the bucket no-such-bucket at \S+ does not exist$")


def test_an_endpoint_nobody_answers_is_refused_at_start(tmp_path, s3_server):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = cli_config(tmp_path, s3_server, "geo-blobs", endpoint=f"http://127.0.0.1:{port}")
    assert_refused_at_start(tmp_path, config, r"cannot reach the bucket geo-blobs at "
                                              r"http://127\.0\.0\.1:\d+: no answer")


def test_wrong_credentials_are_refused_at_start_without_the_secret(tmp_path, s3_auth_server):
    bucket = s3_auth_server.make_bucket()
    key_id, _ = s3_auth_server.create_access_key("geo-start")
    config = cli_config(tmp_path, s3_auth_server, bucket, key=(key_id, "w" * 40))
    assert_refused_at_start(tmp_path, config, r"refused the credentials for the bucket \S+ "
                                              r"at \S+ \((SignatureDoesNotMatch|Forbidden)",
                            secret="w" * 40)


def test_object_storage_without_a_configured_store_is_refused(tmp_path):
    path = tmp_path / "geo.toml"
    path.write_text(f"""[primary]
database_url = "sqlite:///{tmp_path / 'primary.db'}"
storage_path = "{tmp_path / 'primary'}"
""")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x")
    result = run_cli("primary", "add", "--object-storage", str(blob), "--config", str(path))
    assert result.returncode != 0
    assert result.stderr.strip() == ("geo-console: error: --object-storage: object storage "
                                     "is not configured: enable [primary.object_store] with a "
                                     "bucket and its connection (docs/OBJECT_STORAGE.md)")
    assert not (tmp_path / "primary.db").exists()


def test_primary_add_and_delete_with_object_storage(tmp_path, s3_server):
    """`primary add --object-storage` puts the file into the bucket (in
    parts past the multipart threshold) and `primary delete` takes it out."""
    bucket = s3_server.make_bucket()
    config = cli_config(tmp_path, s3_server, bucket)
    assert run_cli("db", "upgrade", "--config", config).returncode == 0
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(b"into the bucket")
    large.write_bytes(os.urandom(20 * MiB))  # over the 8 MiB of one PUT here
    added = run_cli("primary", "add", "--object-storage", str(small), str(large),
                    "--config", config)
    assert added.returncode == 0, added.stderr
    ids = [int(line) for line in added.stdout.split()]
    s3 = s3_server.client()
    stored = {item["Key"]: item for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert len(stored) == 2
    by_size = {item["Size"]: key for key, item in stored.items()}
    assert s3.get_object(Bucket=bucket, Key=by_size[15])["Body"].read() == b"into the bucket"
    assert stored[by_size[20 * MiB]]["ETag"].strip('"').endswith("-3")  # three parts
    listed = run_cli("primary", "list", "--config", config).stdout
    assert listed.count(" remote ") == 2
    deleted = run_cli("primary", "delete", str(ids[0]), "--type", "cool_widget", "--config",
                      config)
    assert deleted.returncode == 0, deleted.stderr
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == \
        [by_size[20 * MiB]]
