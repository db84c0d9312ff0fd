"""A client for a Geo Console site's API: GraphQL through gql, plus the REST
status. The console uses it from worker threads (never the GUI thread) for a
remote headless secondary, and tests use it against running sites. It has
no Qt dependency of its own.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import requests
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (TransportError, TransportQueryError,
                                      TransportServerError)
from gql.transport.requests import RequestsHTTPTransport

from backend.replicables import registered

REGISTRY_FIELDS = """id modelRecordId createdAt lastSyncedAt retryAt state retryCount
lastSyncFailure missingOnPrimary verificationState verifiedAt verificationStartedAt
verificationRetryAt verificationRetryCount verificationFailure verificationChecksum
verificationChecksumMismatched checksumMismatch"""

HISTORY_FIELDS = """time registryCount syncedCount failedCount verificationTotalCount
verifiedCount verificationFailedCount syncedPercentage verifiedPercentage
syncsSucceededPerMinute syncsFailedPerMinute verificationsSucceededPerMinute
verificationsFailedPerMinute bytesPerSecond"""


class SiteClientError(Exception):
    """The site refused or could not be reached; the message says which."""


@dataclass
class RegistryPage:
    nodes: list[dict]
    count: int | None
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def registry_gid(replicable: str, registry_id: int) -> str:
    replicator = _replicator(replicable)
    return f"gid://gitlab/Geo::{replicator.graphql_name}Registry/{int(registry_id)}"


def registry_id_of(gid: str) -> int:
    return int(str(gid).rsplit("/", 1)[1])


def _replicator(replicable: str):
    for replicator in registered():
        if replicator.replicable_name == replicable:
            return replicator
    raise SiteClientError(f"unknown replicable type {replicable!r}")


class SiteClient:
    def __init__(self, url: str, api_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_token = api_token or None
        self.timeout = timeout

    # --- plumbing ----------------------------------------------------------------

    def execute(self, query: str, variables: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        transport = RequestsHTTPTransport(url=f"{self.url}/api/graphql", headers=headers,
                                          timeout=self.timeout, retries=0)
        client = Client(transport=transport, fetch_schema_from_transport=False)
        request = GraphQLRequest(query, variable_values=variables or {})
        try:
            return client.execute(request)
        except TransportQueryError as exc:
            errors = exc.errors or [{"message": str(exc)}]
            raise SiteClientError("; ".join(e.get("message", str(e)) for e in errors)) from None
        except TransportServerError as exc:
            raise SiteClientError(f"{self.url} answered HTTP {exc.code}") from None
        except (TransportError, requests.RequestException, OSError) as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None

    def _get(self, path: str):
        try:
            response = requests.get(f"{self.url}{path}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None
        if response.status_code != 200:
            raise SiteClientError(f"{self.url}{path} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise SiteClientError(f"{self.url}{path} did not answer JSON") from None

    # --- reading ---------------------------------------------------------------------

    def node(self) -> dict:
        data = self.execute("""{ geoNode { id name url primary enabled filesMaxCapacity
            verificationMaxCapacity syncObjectStorage selectiveSyncType selectiveSyncShards
            minimumReverificationInterval } }""")
        if data["geoNode"] is None:
            raise SiteClientError(f"{self.url} did not describe itself")
        return data["geoNode"]

    def status(self) -> dict:
        return self._get("/api/v4/geo_sites/current/status")

    def all_statuses(self) -> list[dict]:
        return self._get("/api/v4/geo_sites/status")

    def registries(self, replicable: str = "cool_widget", *, first: int | None = None,
                   after: str | None = None, last: int | None = None,
                   before: str | None = None, ids: list[int] | None = None,
                   replication_state: str | None = None,
                   verification_state: str | None = None, keyword: str | None = None,
                   sort: str = "ID_ASC", count_limit: int = 1000,
                   offset: int | None = None) -> RegistryPage:
        replicator = _replicator(replicable)
        field = _camel(replicator.replicable_name) + "Registries"
        id_type = f"Geo{replicator.graphql_name}RegistryID"
        query = f"""query($first: Int, $last: Int, $before: String, $after: String,
            $ids: [{id_type}!], $replicationState: ReplicationStateEnum,
            $verificationState: VerificationStateEnum, $keyword: String,
            $sort: GeoRegistrySort, $countLimit: Int, $offset: Int) {{
          geoNode {{ {field}(first: $first, last: $last, before: $before, after: $after,
              ids: $ids, replicationState: $replicationState,
              verificationState: $verificationState, keyword: $keyword, sort: $sort,
              offset: $offset) {{
            count(limit: $countLimit)
            pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
            nodes {{ {REGISTRY_FIELDS} }}
          }} }} }}"""
        variables = {
            "first": first, "last": last, "before": before, "after": after,
            "ids": None if ids is None else [registry_gid(replicable, i) for i in ids],
            "replicationState": replication_state.upper() if replication_state else None,
            "verificationState": verification_state.upper() if verification_state else None,
            "keyword": keyword, "sort": sort, "countLimit": count_limit, "offset": offset}
        connection = (self.execute(query, variables)["geoNode"] or {}).get(field)
        if connection is None:
            raise SiteClientError(f"{self.url} has no {replicator.title} registries "
                                  "(it is not a secondary)")
        info = connection["pageInfo"]
        nodes = [dict(node, registryId=registry_id_of(node["id"]))
                 for node in connection["nodes"]]
        return RegistryPage(nodes, connection["count"], info["hasNextPage"],
                            info["hasPreviousPage"], info["startCursor"], info["endCursor"])

    def history(self, start: dt.datetime, end: dt.datetime | None = None, buckets: int = 200,
                replicable: str = "cool_widget") -> list[dict]:
        query = f"""query($from: Time!, $to: Time, $buckets: Int, $replicable: String) {{
          geoNode {{ statusHistory(from: $from, to: $to, buckets: $buckets,
                                   replicable: $replicable) {{ {HISTORY_FIELDS} }} }} }}"""
        data = self.execute(query, {"from": start.isoformat(),
                                    "to": end.isoformat() if end else None,
                                    "buckets": buckets, "replicable": replicable})
        return (data["geoNode"] or {}).get("statusHistory") or []

    # --- actions ----------------------------------------------------------------------

    def update(self, action: str, registry_id: int, replicable: str = "cool_widget") -> dict:
        """RESYNC or REVERIFY one registry; returns the registry afterwards."""
        query = """mutation($id: GeoBaseRegistryID!, $action: GeoRegistryAction!) {
          geoRegistriesUpdate(input: {registryId: $id, action: $action}) {
            errors registry { ... on %s { id state verificationState } } } }""" % (
            _replicator(replicable).graphql_name + "Registry")
        result = self.execute(query, {"id": registry_gid(replicable, registry_id),
                                      "action": action.upper()})["geoRegistriesUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result["registry"]

    def bulk_update(self, action: str, replicable: str = "cool_widget", *,
                    ids: list[int] | None = None, replication_state: str | None = None,
                    verification_state: str | None = None) -> int:
        """RESYNC_ALL or REVERIFY_ALL, narrowed; returns how many were scheduled."""
        replicator = _replicator(replicable)
        query = """mutation($class: GeoRegistryClass!, $action: GeoRegistriesBulkAction!,
            $ids: [GeoBaseRegistryID!], $replicationState: ReplicationStateEnum,
            $verificationState: VerificationStateEnum) {
          geoRegistriesBulkUpdate(input: {registryClass: $class, action: $action, ids: $ids,
              replicationState: $replicationState, verificationState: $verificationState}) {
            errors updatedCount } }"""
        result = self.execute(query, {
            "class": f"{replicator.replicable_name.upper()}_REGISTRY", "action": action.upper(),
            "ids": None if ids is None else [registry_gid(replicable, i) for i in ids],
            "replicationState": replication_state.upper() if replication_state else None,
            "verificationState": verification_state.upper() if verification_state else None,
        })["geoRegistriesBulkUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result["updatedCount"]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "no answer"
    return text.splitlines()[0][:200] if text else exc.__class__.__name__
