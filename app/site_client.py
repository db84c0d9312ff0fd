"""A client for a Geo Console site's API: GraphQL through gql, plus the REST
status. The console uses it from worker threads (never the GUI thread) for a
remote headless secondary, and tests use it against running sites. It has
no Qt dependency of its own.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass

import requests
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (TransportError, TransportQueryError,
                                      TransportServerError)
from gql.transport.requests import RequestsHTTPTransport

from backend.db.types import MAX_ID
from backend.framework.replicator import ReplicableType
from backend.replicables import registered
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection

REGISTRY_FIELDS = """id modelRecordId createdAt lastSyncedAt retryAt state retryCount
lastSyncFailure missingOnPrimary verificationState verifiedAt verificationStartedAt
verificationRetryAt verificationRetryCount verificationFailure verificationChecksum
verificationChecksumMismatched checksumMismatch fileName size fileStore projectId projectPath
shard primaryChecksum"""

# How a site refuses a mutation from its read_token (backend/api/graphql/mutations.py).
READ_ONLY_REFUSAL = "This token only reads"
HISTORY_FIELDS = """time registryCount syncedCount failedCount verificationTotalCount
verifiedCount verificationFailedCount syncedPercentage verifiedPercentage
syncsSucceededPerMinute syncsFailedPerMinute verificationsSucceededPerMinute
verificationsFailedPerMinute bytesPerSecond"""


class SiteClientError(Exception):
    """The site refused or could not be reached; the message says which."""


@dataclass
class RegistryPage:
    nodes: list[dict]           # as the API answered
    rows: list[RegistryRow]     # the same registries as rows
    count: int | None
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def registry_gid(kind: ReplicableType, registry_id: int) -> str:
    return f"gid://gitlab/Geo::{kind.graphql_name}Registry/{int(registry_id)}"


def registry_id_of(gid: str) -> int:
    return int(str(gid).rsplit("/", 1)[1])


def type_of_field(field: str, node_type: str) -> ReplicableType:
    """The type behind GeoNode's `<types>Registries` field of node type
    `<Type>Registry`: as this console declares it when it knows it, else
    named from the site's schema."""
    graphql_name = node_type.removesuffix("Registry")
    known = {r.graphql_name: r for r in registered()}
    if graphql_name in known:
        return known[graphql_name].describe()
    name = _snake(graphql_name)
    title = " ".join(part.title() for part in name.split("_"))
    return ReplicableType(name, _snake(field.removesuffix("Registries")), title, title + "s",
                          f"{name}_id", graphql_name)


class SiteClient:
    """Each thread that calls it keeps its own connection to the site (a
    requests session under gql, and one for the REST status), so a poll
    every few seconds reuses one TCP connection instead of opening one per
    request. Sessions are kept by thread id, not in a threading.local: the
    console's workers are Qt threads, whose Python thread state (and with it
    a threading.local) does not outlive each call."""

    def __init__(self, url: str, api_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_token = api_token or None
        self.timeout = timeout
        self._sessions: dict[tuple[int, str], object] = {}  # (thread id, kind) -> session
        self._closers: list = []
        self._lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------

    def _session(self, kind: str, make):
        key = (threading.get_ident(), kind)
        with self._lock:
            session = self._sessions.get(key)
        if session is None:
            session, close = make()
            with self._lock:
                self._sessions[key] = session
                self._closers.append(close)
        return session

    def _graphql(self):
        """This thread's gql session, connected once."""
        def make():
            headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
            transport = RequestsHTTPTransport(url=f"{self.url}/api/graphql", headers=headers,
                                              timeout=self.timeout, retries=0)
            client = Client(transport=transport, fetch_schema_from_transport=False)
            return client.connect_sync(), client.close_sync
        return self._session("graphql", make)

    def _http(self) -> requests.Session:
        def make():
            session = requests.Session()
            return session, session.close
        return self._session("http", make)

    def close(self) -> None:
        with self._lock:
            closers, self._closers = self._closers, []
            self._sessions.clear()
        for close in closers:
            try:
                close()
            except Exception:  # closing what may already be broken
                pass

    def execute(self, query: str, variables: dict | None = None) -> dict:
        request = GraphQLRequest(query, variable_values=variables or {})
        try:
            return self._graphql().execute(request)
        except TransportQueryError as exc:
            errors = exc.errors or [{"message": str(exc)}]
            raise SiteClientError("; ".join(e.get("message", str(e)) for e in errors)) from None
        except TransportServerError as exc:
            raise SiteClientError(f"{self.url} answered HTTP {exc.code}") from None
        except (TransportError, requests.RequestException, OSError) as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None

    def _get(self, path: str):
        try:
            headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
            response = self._http().get(f"{self.url}{path}", timeout=self.timeout,
                                        headers=headers)
        except requests.RequestException as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None
        if response.status_code != 200:
            raise SiteClientError(_refusal(response, f"{self.url}{path}"))
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
        """Every site's status: a primary's list, or a secondary's, which it
        asks its primary for."""
        statuses = self._get("/api/v4/geo_sites/status")
        if not isinstance(statuses, list):
            raise SiteClientError(f"{self.url} did not answer with a list of sites")
        return statuses

    def types(self) -> list[ReplicableType]:
        """The registry types the site's schema has, in its order."""
        data = self.execute("""{ geoNode { primary } __type(name: "GeoNode") { fields { name
            type { name kind ofType { name } } } } }""")
        if (data.get("geoNode") or {}).get("primary"):
            raise SiteClientError(f"{self.url} is a primary site: registries are kept by "
                                  "secondaries (it is not a secondary)")
        fields = (data.get("__type") or {}).get("fields") or []
        found = []
        for field in fields:
            connection = field["type"]["name"] or (field["type"]["ofType"] or {}).get("name")
            if field["name"].endswith("Registries") and connection \
                    and connection.endswith("RegistryConnection"):
                found.append(type_of_field(field["name"],
                                           connection.removesuffix("Connection")))
        if not found:
            raise SiteClientError(f"{self.url} has no registries (it is not a secondary)")
        return found

    def registries(self, kind: ReplicableType, selection: RegistrySelection | None = None, *,
                   first: int | None = None, after: str | None = None,
                   last: int | None = None, before: str | None = None,
                   sort: str = "ID_ASC", count_limit: int = 1000,
                   offset: int | None = None) -> RegistryPage:
        selection = selection or RegistrySelection()
        field = _camel(kind.replicable_name) + "Registries"
        id_type = f"Geo{kind.graphql_name}RegistryID"
        query = f"""query($first: Int, $last: Int, $before: String, $after: String,
            $ids: [{id_type}!], $replicationState: ReplicationStateEnum,
            $verificationState: VerificationStateEnum, $keyword: String,
            $sort: GeoRegistrySort, $countLimit: Int, $offset: Int, $syncFailure: String,
            $verificationFailure: String) {{
          geoNode {{ {field}(first: $first, last: $last, before: $before, after: $after,
              ids: $ids, replicationState: $replicationState,
              verificationState: $verificationState, keyword: $keyword, sort: $sort,
              offset: $offset, syncFailure: $syncFailure,
              verificationFailure: $verificationFailure) {{
            count(limit: $countLimit)
            pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
            nodes {{ {REGISTRY_FIELDS} }}
          }} }} }}"""
        variables = {
            "first": first, "last": last, "before": before, "after": after,
            **_narrowing(kind, selection), "keyword": selection.keyword, "sort": sort,
            "syncFailure": selection.sync_failure,
            "verificationFailure": selection.verification_failure,
            "countLimit": count_limit, "offset": offset}
        connection = (self.execute(query, variables)["geoNode"] or {}).get(field)
        if connection is None:
            raise SiteClientError(f"{self.url} has no {kind.title} registries "
                                  "(it is not a secondary)")
        info = connection["pageInfo"]
        nodes = [dict(node, registryId=registry_id_of(node["id"]))
                 for node in connection["nodes"]]
        rows = [RegistryRow.from_graphql(node, kind.replicable_name) for node in nodes]
        return RegistryPage(nodes, rows, connection["count"], info["hasNextPage"],
                            info["hasPreviousPage"], info["startCursor"], info["endCursor"])

    def history(self, start: dt.datetime, end: dt.datetime | None = None, buckets: int = 200,
                kind: ReplicableType | None = None) -> list[dict]:
        query = f"""query($from: Time!, $to: Time, $buckets: Int, $replicable: String) {{
          geoNode {{ statusHistory(from: $from, to: $to, buckets: $buckets,
                                   replicable: $replicable) {{ {HISTORY_FIELDS} }} }} }}"""
        data = self.execute(query, {"from": start.isoformat(),
                                    "to": end.isoformat() if end else None,
                                    "buckets": buckets,
                                    "replicable": kind.replicable_name if kind else None})
        return (data["geoNode"] or {}).get("statusHistory") or []

    def failure_groups(self, kind: ReplicableType, limit: int = 100) -> list[dict]:
        data = self.execute(
            "query($replicable: String, $limit: Int) { geoNode { registryFailureGroups("
            "replicable: $replicable, limit: $limit) { kind message count lastSeenAt } } }",
            {"replicable": kind.replicable_name, "limit": limit})
        groups = (data["geoNode"] or {}).get("registryFailureGroups") or []
        return [{"kind": g["kind"].lower(), "message": g["message"], "count": g["count"],
                 "last_seen_at": _time(g["lastSeenAt"])} for g in groups]

    # --- actions ----------------------------------------------------------------------

    def update(self, action: str, kind: ReplicableType, registry_id: int) -> dict:
        """RESYNC or REVERIFY one registry; returns the registry afterwards."""
        query = """mutation($id: GeoBaseRegistryID!, $action: GeoRegistryAction!) {
          geoRegistriesUpdate(input: {registryId: $id, action: $action}) {
            errors registry { ... on %s { id state verificationState } } } }""" % (
            kind.graphql_name + "Registry")
        result = self.execute(query, {"id": registry_gid(kind, registry_id),
                                      "action": action.upper()})["geoRegistriesUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result["registry"]

    def check_token(self, kind: ReplicableType) -> str:
        """"write" if the token may act, "read" if it is the site's
        read_token; raises SiteClientError if it is refused. Asks to resync
        the registry of the largest id there can be, which no sequence
        reaches, so nothing changes."""
        query = """mutation($id: GeoBaseRegistryID!) {
          geoRegistriesUpdate(input: {registryId: $id, action: RESYNC}) { errors } }"""
        try:
            self.execute(query, {"id": registry_gid(kind, MAX_ID)})
        except SiteClientError as exc:
            if str(exc).startswith(READ_ONLY_REFUSAL):
                return "read"
            raise
        return "write"

    def bulk_update(self, action: str, kind: ReplicableType,
                    selection: RegistrySelection | None = None) -> int:
        """resync or reverify every registry of the selection's ids and
        states (RESYNC_ALL, REVERIFY_ALL); returns how many were scheduled."""
        selection = selection or RegistrySelection()
        if not selection.narrows_by_ids_and_states_only:
            raise SiteClientError("a bulk action narrows by registry ids and states only")
        query = """mutation($class: GeoRegistryClass!, $action: GeoRegistriesBulkAction!,
            $ids: [GeoBaseRegistryID!], $replicationState: ReplicationStateEnum,
            $verificationState: VerificationStateEnum) {
          geoRegistriesBulkUpdate(input: {registryClass: $class, action: $action, ids: $ids,
              replicationState: $replicationState, verificationState: $verificationState}) {
            errors updatedCount } }"""
        result = self.execute(query, {
            "class": f"{kind.replicable_name.upper()}_REGISTRY",
            "action": f"{action.upper().removesuffix('_ALL')}_ALL",
            **_narrowing(kind, selection)})["geoRegistriesBulkUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result["updatedCount"]


def _narrowing(kind: ReplicableType, selection: RegistrySelection) -> dict:
    """The ids and states of a selection as GraphQL variables."""
    return {
        "ids": None if selection.ids is None
        else [registry_gid(kind, i) for i in selection.ids],
        "replicationState": selection.replication_state.name
        if selection.replication_state is not None else None,
        "verificationState": selection.verification_state.name
        if selection.verification_state is not None else None}


def _time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _refusal(response, where: str) -> str:
    """What a site answering an error status says, or its status code."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message.strip():
        return message.strip().splitlines()[0][:300]
    return f"{where} answered HTTP {response.status_code}"


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "no answer"
    return text.splitlines()[0][:200] if text else "the connection failed"
