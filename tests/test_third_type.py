"""A type is one declaration: Gadgets, declared only in the test suite
(tests/support/gadgets.py, tables made by the migration helpers), reach the
CLI's status, check and registries, GraphQL, the REST status and /metrics
without any other edit. The console views: tests/console/test_third_type.py."""
import json

import pytest
import urllib3

from backend.cli import main
from tests.support.gadgets import GADGETS
from tests.support.graphql_http import data as graphql
from tests.support.sites import READ_HEADERS

pytestmark = pytest.mark.slow


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_check_and_registries_show_the_third_type(gadget_sites, capsys):
    config = gadget_sites.config_path
    code, out, _ = run(capsys, "status", "--config", config)
    assert code == 0
    assert (f"Gadgets replicated: failed 1 / succeeded {GADGETS - 1} / total {GADGETS} "
            f"({(GADGETS - 1) * 100 // GADGETS}%)") in out
    assert f"Gadgets verified: succeeded {GADGETS - 1} / total {GADGETS}" in out
    code, out, _ = run(capsys, "status", "--json", "--config", config)
    assert json.loads(out)["gadgets_failed_count"] == 1
    code, out, _ = run(capsys, "check", "--config", config)
    assert code == 1 and "Gadgets replicated: failed 1" in out
    code, out, _ = run(capsys, "registries", "--type", "gadget", "--replication-state",
                       "failed", "--json", "--config", config)
    rows = json.loads(out)
    assert code == 0 and [(r["type"], r["gadget_id"]) for r in rows] == [
        ("gadget", gadget_sites.missing)]
    assert rows[0]["last_sync_failure"] == "The file is missing on the Geo primary site"
    code, out, _ = run(capsys, "resync", str(rows[0]["registry_id"]), "--type", "gadget",
                       "--config", config)
    assert code == 0 and out == "Scheduled 1 gadgets for resync.\n"


def test_graphql_serves_the_third_types_registries_and_mutations(gadget_sites):
    url = gadget_sites.secondary.url
    answer = graphql(url, """{ geoNode { gadgetRegistries(first: 50, replicationState: FAILED) {
        count nodes { id gadgetId state lastSyncFailure missingOnPrimary } } } }""")
    connection = answer["geoNode"]["gadgetRegistries"]
    assert connection["count"] == 1
    node = connection["nodes"][0]
    assert node["gadgetId"] == str(gadget_sites.missing) and node["missingOnPrimary"]
    assert node["id"].startswith("gid://gitlab/Geo::GadgetRegistry/")
    answer = graphql(url, """mutation($id: GeoBaseRegistryID!) {
        geoRegistriesUpdate(input: {registryId: $id, action: RESYNC}) {
          errors registry { ... on GadgetRegistry { gadgetId state } } } }""",
                     {"id": node["id"]}, token="gadget-token")
    update = answer["geoRegistriesUpdate"]
    assert update["errors"] == [] and update["registry"]["state"] in ("PENDING", "STARTED",
                                                                      "FAILED")
    bulk = graphql(url, """mutation { geoRegistriesBulkUpdate(input: {
        registryClass: GADGET_REGISTRY, action: REVERIFY_ALL}) { errors updatedCount } }""",
                   token="gadget-token")
    assert bulk["geoRegistriesBulkUpdate"]["updatedCount"] >= GADGETS - 2


def test_rest_status_and_metrics_carry_the_third_type(gadget_sites):
    http = urllib3.PoolManager()
    url = gadget_sites.secondary.url
    status = json.loads(http.request("GET", url + "/api/v4/geo_sites/current/status",
                                     headers=READ_HEADERS).data)
    assert status["gadgets_registry_count"] == GADGETS
    assert status["gadgets_failed_count"] == 1
    assert status["gadgets_synced_in_percentage"] == "91.66%"  # 11 of 12, rounded down
    gadget_sites.secondary.engine.snapshot()
    metrics = http.request("GET", url + "/metrics").data.decode()
    assert f'geo_gadgets_registry{{name="secondary-1",url="secondary-1"}} {GADGETS}.0' in metrics
    assert 'geo_gadgets_failed{name="secondary-1",url="secondary-1"} 1.0' in metrics
    primary = json.loads(http.request("GET", gadget_sites.primary.url
                                      + "/api/v4/geo_sites/current/status",
                                      headers=READ_HEADERS).data)
    assert primary["gadgets_count"] == GADGETS
    assert primary["gadgets_checksum_failed_count"] == 1  # the file it could not read
