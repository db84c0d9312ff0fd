"""Configurations and requests that used to be accepted and then misbehave
are refused at once, in one readable line (issue "Reliability and
security, second round", item 11): both sites on one port, a secondary
that cannot listen, a search with a lone surrogate, a header line over
8 KiB, a write while another writer holds the SQLite tracking DB."""
import json
import logging
import socket
import sqlite3
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select

from backend.api.server import ServerError
from backend.config import ConfigError, parse_config
from backend.db.tracking_schema import EngineHeartbeat, EngineLease
from backend.sites.secondary import SecondarySite
from tests.support.sites import READ_HEADERS, secondary_config

SITES = {
    "primary": {"database_url": "sqlite:///p.db", "storage_path": "p", "listen": "0.0.0.0:8090",
                "secondaries": [{"name": "eu", "access_key": "k", "secret": "s" * 40}]},
    "secondary": {"name": "eu", "primary_url": "http://127.0.0.1:8090", "access_key": "k",
                  "secret": "s" * 40, "tracking_database_url": "sqlite:///t.db",
                  "storage_path": "s", "listen": "127.0.0.1:8090"},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_both_sites_of_one_file_on_one_port_are_refused():
    with pytest.raises(ConfigError) as refused:
        parse_config(SITES, "both.toml")
    assert str(refused.value) == ("both.toml: the primary and the secondary both listen on "
                                  "port 8090; give each site a port of its own")
    apart = {**SITES, "secondary": {**SITES["secondary"], "listen": "127.0.0.1:8091"}}
    assert parse_config(apart, "both.toml").secondary.listen == "127.0.0.1:8091"
    ephemeral = {"primary": {**SITES["primary"], "listen": "127.0.0.1:0"},
                 "secondary": {**SITES["secondary"], "listen": "127.0.0.1:0"}}
    parse_config(ephemeral, "both.toml")  # port 0: each gets a port of its own


def test_a_secondary_that_cannot_listen_stops_before_its_engine_registers(
        tracking_url, tmp_path, credentials):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        config = secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s",
                                  credentials, listen=f"127.0.0.1:{port}")
        site = SecondarySite(config)
        with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            site.start()
        with site.tracking_engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(
                EngineHeartbeat.__table__)).scalar() == 0
            assert connection.execute(select(func.count()).select_from(
                EngineLease.__table__)).scalar() == 0
    finally:
        taken.close()


@pytest.fixture
def serving(tracking_url, tmp_path, credentials):
    config = secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s", credentials,
                              api_token="token")
    site = SecondarySite(config).start(run_engine=False)
    yield site
    site.stop()


def post(site, body: bytes, headers=None) -> dict:
    request = urllib.request.Request(site.url + "/api/graphql", data=body, headers={
        "Content-Type": "application/json", **(headers or READ_HEADERS)})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def test_a_lone_surrogate_in_a_search_is_a_readable_error(serving):
    body = (b'{"query": "query($k: String) { geoNode { coolWidgetRegistries(keyword: $k) '
            b'{ nodes { id } } } }", "variables": {"k": "\\ud800abc"}}')
    [error] = post(serving, body)["errors"]
    assert error["message"] == ("the search text holds a character that is not text "
                                "(a lone UTF-16 surrogate); type it again")


def test_a_header_line_over_8_kib_is_one_log_line(serving, caplog):
    caplog.set_level(logging.WARNING, logger="aiohttp.server")
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(serving, b"{}", {"Authorization": "Bearer " + "a" * 20_000})
        assert refused.value.code == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 3
    assert all(r.levelno == logging.WARNING and r.exc_info is None
               and r.getMessage().startswith("refused a malformed HTTP request: Got more than")
               for r in records)


def test_a_write_while_another_writer_holds_sqlite_says_busy(tmp_path, credentials,
                                                             monkeypatch):
    from backend.db import engine as db_engine
    monkeypatch.setattr(db_engine, "BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "tracking.db"
    config = secondary_config("http://127.0.0.1:9", f"sqlite:///{path}", tmp_path / "s",
                              credentials, api_token="token")
    site = SecondarySite(config).start(run_engine=False)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, holding the lock
        body = json.dumps({"query": 'mutation { geoRegistriesBulkUpdate(input: {registryClass: '
                                    'COOL_WIDGET_REGISTRY, action: RESYNC_ALL}) { errors } }'})
        answer = post(site, body.encode(), {"Authorization": "Bearer token"})
        assert answer["errors"][0]["message"] == (
            "the tracking database is busy (another writer held it for 0.3 s); "
            "try again in a moment")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        site.stop()


def test_two_secondaries_of_one_name_the_second_is_refused_at_start(primary, tracking_url,
                                                                   tmp_path, credentials):
    import datetime as dt

    from sqlalchemy import update

    from backend.db.primary_schema import GeoNodeStatus
    from backend.framework.site_identity import SiteNameTaken

    def secondary(folder: str, listen: str) -> SecondarySite:
        return SecondarySite(secondary_config(
            primary.url, f"sqlite:///{tmp_path / (folder + '.db')}", tmp_path / folder,
            credentials, listen=listen))

    one, two = (f"127.0.0.1:{free_port()}" for _ in range(2))
    first = SecondarySite(secondary_config(primary.url, tracking_url, tmp_path / "one",
                                           credentials, listen=one)).start()
    try:
        # A second site of the same name on this machine (another port).
        second = secondary("two", two)
        with pytest.raises(SiteNameTaken) as refused:
            second.start()
        assert str(refused.value).startswith(
            "secondary 'secondary-1' cannot start: another secondary named 'secondary-1' on ")
        assert "still runs; give each secondary a name of its own" in str(refused.value)
        assert second.server is None and not second.engine.running
        stored = {s["site_name"]: s["status"] for s in primary.secondary_statuses()}
        assert stored["secondary-1"]["instance_id"] == first.instance_id
    finally:
        first.stop()
    # The first said it stopped: its name is free at once.
    replacement = secondary("two", two).start()
    # One that crashes (it never says it stopped) frees its name after two
    # of its status intervals (60 s here) and 5 s.
    replacement.engine.stop()
    [last] = [s["status"] for s in primary.secondary_statuses()]

    def crashed(seconds_ago: float) -> None:
        with primary.engine.begin() as connection:
            connection.execute(update(GeoNodeStatus).values(
                status={**last, "engine_state": "running", "status_interval": 60},
                updated_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)))

    crashed(3)
    with pytest.raises(SiteNameTaken, match=r"its name is free in \d+ s"):
        secondary("three", one).start()
    crashed(130)
    secondary("three", one).start().stop()
    replacement.stop()
