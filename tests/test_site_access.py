"""Who may read a site's API and scrape its metrics (issue "Reliability and
security, second round", item 1): reads need the site's api_token or its
read_token (Bearer or GitLab's PRIVATE-TOKEN), a site with neither answers
only its own machine, and /metrics answers loopback and `metrics_allow`.
Requests from another address use this machine's own non-loopback address,
so the site sees a client that is not loopback."""
import dataclasses
import socket

import pytest
import urllib3

from backend.config import ConfigError, parse_config
from backend.sites.secondary import SecondarySite
from tests.support.sites import READ_TOKEN, secondary_config

HTTP = urllib3.PoolManager(retries=False)


def own_address() -> str | None:
    """This machine's address on its way out (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # no packet is sent for a UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture
def address():
    found = own_address()
    if found is None:
        pytest.skip("this machine has no address but loopback")
    return found


def start(tracking_url, tmp_path, credentials, **options):
    config = secondary_config("http://127.0.0.1:9", tracking_url, tmp_path / "s", credentials,
                              listen="0.0.0.0:0", **options)
    return SecondarySite(config).start(run_engine=False)


def get(url, headers=None):
    response = HTTP.request("GET", url, headers=headers or {}, timeout=10)
    return response.status, response.data.decode()


def test_reads_need_a_token_and_metrics_an_allowed_address(
        address, tracking_url, tmp_path, credentials):
    site = start(tracking_url, tmp_path, credentials)
    port = site.server.port
    try:
        status = f"http://{address}:{port}/api/v4/geo_sites/current/status"
        code, body = get(status)
        assert code == 401 and "needs a token" in body
        assert get(status, {"Authorization": f"Bearer {READ_TOKEN}"})[0] == 200
        assert get(status, {"PRIVATE-TOKEN": READ_TOKEN})[0] == 200
        assert get(status, {"Authorization": "Bearer test-token"})[0] == 200  # the api_token
        code, body = get(status, {"PRIVATE-TOKEN": "guess"})
        assert code == 401 and "neither this site's api_token nor its read_token" in body
        # /metrics: this machine (loopback) yes, the same machine by its
        # other address no, unless that address is allowed.
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        code, body = get(f"http://{address}:{port}/metrics")
        assert code == 403 and f"{address} is not one of them" in body
    finally:
        site.stop()
    site = start(tracking_url, tmp_path, credentials, metrics_allow=(f"{address}/32",))
    try:
        code, body = get(f"http://{address}:{site.server.port}/metrics")
        assert code == 200 and "geo_cool_widgets_registry" in body
    finally:
        site.stop()


def test_a_site_without_tokens_answers_only_its_own_machine(
        address, tracking_url, tmp_path, credentials):
    site = start(tracking_url, tmp_path, credentials, api_token="", read_token="")
    port = site.server.port
    try:
        assert get(f"http://127.0.0.1:{port}/api/v4/geo_sites/current/status")[0] == 200
        code, body = get(f"http://{address}:{port}/api/v4/geo_sites/current/status")
        assert code == 401 and "answers only on its own machine" in body
    finally:
        site.stop()


def test_the_tokens_and_the_allow_list_are_checked_in_the_configuration():
    section = dataclasses.asdict(secondary_config("http://p", "sqlite:///t.db", "/tmp/s",
                                                  {"access_key": "k", "secret": "s" * 40}))
    section = {key: list(value) if isinstance(value, tuple) else value
               for key, value in section.items()}
    for change, said in (({"metrics_allow": ["10.0.0.0/8", "the office"]},
                          "secondary.metrics_allow holds 'the office', which is not an IP "
                          "address or network (such as 10.0.0.0/8)"),
                         ({"read_token": "same", "api_token": "same"},
                          "secondary.read_token must differ from api_token (it only reads)")):
        with pytest.raises(ConfigError) as error:
            parse_config({"secondary": {**section, **change}}, "geo.toml", {})
        assert str(error.value) == f"geo.toml: {said}"
    parse_config({"secondary": {**section, "metrics_allow": ["10.0.0.0/8", "192.0.2.7"]}},
                 "geo.toml", {})
