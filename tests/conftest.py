"""Shared fixtures: real SQLite and PostgreSQL databases, real sites on loopback.

Every database test runs twice, on SQLite and on PostgreSQL
(127.0.0.1:5432, or GEO_CONSOLE_TEST_POSTGRES_URL). Each PostgreSQL test
gets a schema of its own in one test database. Without a server the
PostgreSQL runs are skipped, except where GEO_CONSOLE_REQUIRE_POSTGRES is set
(CI), where they fail.
"""
from __future__ import annotations

import logging
import os
import secrets
import uuid

import pytest
from sqlalchemy import create_engine, text

from backend.framework.clock import clock
# The S3-protocol server (moto's, its own process) and fresh buckets on it.
from tests.support.s3_server import s3_auth_server, s3_bucket, s3_server  # noqa: F401

POSTGRES_SERVER = os.environ.get("GEO_CONSOLE_TEST_POSTGRES_URL",
                                 "postgresql+psycopg2://postgres@127.0.0.1:5432")
TEST_DATABASE = "geo_console_test"
DB_KINDS = ("sqlite", "postgresql")

_postgres_state: dict = {}


def _postgres_available() -> str | None:
    """None when usable, else the reason."""
    if "reason" not in _postgres_state:
        try:
            admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 5})
            with admin.connect() as connection:
                exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                            {"n": TEST_DATABASE}).first()
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{TEST_DATABASE}"'))
            admin.dispose()
            _postgres_state["reason"] = None
        except Exception as exc:  # no server
            _postgres_state["reason"] = f"PostgreSQL unavailable: {exc}".splitlines()[0]
    return _postgres_state["reason"]


class DatabaseFactory:
    """Fresh, empty databases of one kind for one test."""

    def __init__(self, kind: str, tmp_path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self._schemas: list[str] = []

    def url(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path / (name + '.db')}"
        schema = f"t_{name}_{uuid.uuid4().hex[:12]}"
        with _admin_engine().connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self._schemas.append(schema)
        return f"{POSTGRES_SERVER}/{TEST_DATABASE}?options=-csearch_path%3D{schema}"

    def cleanup(self) -> None:
        if not self._schemas:
            return
        with _admin_engine().connect() as connection:
            for schema in self._schemas:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


_admin = {}


def _admin_engine():
    if "engine" not in _admin:
        _admin["engine"] = create_engine(f"{POSTGRES_SERVER}/{TEST_DATABASE}",
                                         isolation_level="AUTOCOMMIT")
    return _admin["engine"]


def require_database(kind: str) -> str:
    """Skip (fail in CI) a PostgreSQL run without a server; returns `kind`."""
    if kind == "postgresql":
        reason = _postgres_available()
        if reason:
            if os.environ.get("GEO_CONSOLE_REQUIRE_POSTGRES"):
                pytest.fail(reason)
            pytest.skip(reason)
    return kind


@pytest.fixture(params=DB_KINDS)
def db_kind(request) -> str:
    return require_database(request.param)


@pytest.fixture
def postgres_only(db_kind):
    if db_kind != "postgresql":
        pytest.skip("PostgreSQL-only behaviour")
    return db_kind


@pytest.fixture
def databases(db_kind, tmp_path):
    factory = DatabaseFactory(db_kind, tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture
def tracking_url(databases) -> str:
    from backend.db.migrate import upgrade
    url = databases.url("tracking")
    upgrade(url, "tracking")
    return url


@pytest.fixture
def primary_url(databases) -> str:
    from backend.db.migrate import upgrade
    url = databases.url("primary")
    upgrade(url, "primary")
    return url


@pytest.fixture
def primary(primary_url, tmp_path, credentials, s3_server):
    """A running primary site on loopback, with `credentials` for one
    secondary, and object storage in a fresh bucket of the S3 server."""
    from tests.support.sites import object_store, start_primary
    site = start_primary(primary_url, tmp_path / "primary", credentials,
                         object_store=object_store(s3_server))
    yield site
    site.stop()


@pytest.fixture
def tracking_engine(tracking_url):
    from backend.db.engine import create_db_engine
    engine = create_db_engine(tracking_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def retrieve_log():
    """The blob downloads the primary served during the test."""
    from tests.support.access_log import RetrieveLog
    handler = RetrieveLog()
    logger = logging.getLogger("backend.primary.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def credentials() -> dict:
    return {"access_key": "key-" + secrets.token_hex(4), "secret": secrets.token_hex(20)}


def pytest_sessionfinish(session, exitstatus):
    if "engine" in _admin:
        _admin["engine"].dispose()


@pytest.fixture
def gadget_sites(databases, tmp_path, credentials):
    """A third type, declared in the test suite only (tests/support/gadgets.py),
    replicated by running sites for the length of the test."""
    from tests.support.gadgets import registered_gadgets, start_gadget_sites
    with registered_gadgets():
        sites = start_gadget_sites(databases, tmp_path, credentials)
        try:
            yield sites
        finally:
            sites.secondary.stop()
            sites.primary.stop()
