"""Real primary and secondary sites for tests, on loopback."""
from __future__ import annotations

import time

from backend.config import (ObjectStoreConfig, ObjectStoreConnection, PeerConfig,
                            PrimaryConfig, SecondaryConfig)
from backend.sites.primary import PrimarySite
from backend.secondary.engine import SecondaryEngine

# Every test site reads with this token (its site API needs one, as GitLab's).
READ_TOKEN = "test-read-token"
READ_HEADERS = {"Authorization": f"Bearer {READ_TOKEN}"}


def object_store(server, bucket: str | None = None, access_key=None,
                 **options) -> ObjectStoreConfig:
    """An enabled object store in `bucket` (a fresh one by default) of an
    S3 server of tests/support/s3_server.py. `access_key`: (id, secret)
    other than the server's default; `options`: ObjectStoreConfig's."""
    from tests.support.s3_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
    key_id, secret = access_key or server.admin_credentials or (DUMMY_ACCESS_KEY_ID,
                                                                DUMMY_SECRET_ACCESS_KEY)
    connection = ObjectStoreConnection(endpoint=server.endpoint, path_style=True,
                                       aws_access_key_id=key_id, aws_secret_access_key=secret)
    return ObjectStoreConfig(enabled=True, bucket=bucket or server.make_bucket(),
                             connection=connection, **options)


def start_primary(database_url, storage, credentials, secondaries=("secondary-1",),
                  replicators=None, flags=None, before_start=None,
                  object_store: ObjectStoreConfig = ObjectStoreConfig(),
                  object_storage_verification: str = "sha256",
                  **site_options) -> PrimarySite:
    """A primary on loopback. `before_start(site)` runs on the migrated site
    before its server and checksummer start (records made there are
    checksummed as they are, with no race against the checksummer).
    `site_options`: PrimarySite's keywords (`prune_interval`)."""
    peers = tuple(PeerConfig(name, "", credentials["access_key"] + ("" if i == 0 else str(i)),
                             credentials["secret"]) for i, name in enumerate(secondaries))
    config = PrimaryConfig(database_url=database_url, storage_path=str(storage),
                           listen="127.0.0.1:0", secondaries=peers, read_token=READ_TOKEN,
                           object_store=object_store,
                           object_storage_verification=object_storage_verification)
    site = PrimarySite(config, flags, replicators=replicators, **site_options)
    site.upgrade_database()
    if before_start is not None:
        before_start(site)
    return site.start()


def secondary_config(primary_url, tracking_url, storage, credentials, **overrides):
    values = dict(name="secondary-1", primary_url=primary_url,
                  access_key=credentials["access_key"], secret=credentials["secret"],
                  tracking_database_url=tracking_url, storage_path=str(storage),
                  listen="127.0.0.1:0", api_token="test-token", read_token=READ_TOKEN,
                  status_interval=1.0)
    values.update(overrides)
    return SecondaryConfig(**values)


def start_engine(config, replicators=None, flags=None, **kwargs) -> SecondaryEngine:
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("consistency_interval", 1.0)
    engine = SecondaryEngine(config, flags, replicators=replicators, **kwargs)
    engine.upgrade_database()
    return engine.start()


def wait_until(predicate, timeout=60.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def wait_for_checksums(site, replicator=None, timeout=30.0):
    """Wait until the running primary's checksummer has handled every record."""
    from backend.primary.verification_store import PrimaryVerificationStore
    replicator = replicator or site.replicators[0]
    store = PrimaryVerificationStore(site.engine, replicator)
    total = site.catalog(replicator).count()

    def done():
        counts = store.counts()
        return counts["checksummed"] + counts["checksum_failed"] == total

    return wait_until(done, timeout, message="primary checksums")
