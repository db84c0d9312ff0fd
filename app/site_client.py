"""A client for a Geo Console site's API: GraphQL through gql, plus the REST
status. The console uses it from worker threads (never the GUI thread) for a
remote headless secondary, and tests use it against running sites. It has
no Qt dependency of its own.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import requests
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (TransportError, TransportQueryError,
                                      TransportServerError)
from gql.transport.requests import RequestsHTTPTransport

from app.site_schema import (SchemaError, SiteSchema, WANTED_REGISTRY_FIELDS, discover,
                             registries_document)
from backend.db.types import MAX_ID
from backend.framework.replicator import ReplicableType
from backend.secondary.registry_row import RegistryRow
from backend.secondary.registry_selection import RegistrySelection

# Every registry field a Geo Console site has (its largest page of them is
# within the site's cost limit); what is asked of a site is what its schema has.
REGISTRY_FIELDS = " ".join(name for name in WANTED_REGISTRY_FIELDS
                           if name != "dataManagementDetailsPath")  # GitLab 19.x only
# GraphQL's paths, the first tried first: GitLab's UI uses /api/v4/geo/graphql,
# which skips a secondary's proxy to its primary; sites without it answer 404.
GRAPHQL_PATHS = ("/api/v4/geo/graphql", "/api/graphql")
NODE_FIELDS = ("id", "name", "url", "primary", "enabled", "filesMaxCapacity",
               "verificationMaxCapacity", "syncObjectStorage", "selectiveSyncType",
               "selectiveSyncShards", "minimumReverificationInterval")

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


def registry_gid(kind: ReplicableType, registry_id: int) -> str:
    return f"gid://gitlab/Geo::{kind.graphql_name}Registry/{int(registry_id)}"


def registry_id_of(gid: str) -> int:
    return int(str(gid).rsplit("/", 1)[1])


class SiteClient:
    """A Geo Console site or a GitLab Geo site, through the API both serve.
    What the site's GraphQL offers is learnt once by introspection
    (`site_schema`), and every document is built from it.

    Each thread that calls it keeps its own connection to the site (a
    requests session under gql, and one for REST), so a poll every few
    seconds reuses one TCP connection instead of opening one per request.
    Sessions are kept by thread id, not in a threading.local: the console's
    workers are Qt threads, whose Python thread state (and with it a
    threading.local) does not outlive each call."""

    def __init__(self, url: str, api_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_token = api_token or None
        self.timeout = timeout
        self.graphql_path = GRAPHQL_PATHS[0]
        self._schema: SiteSchema | None = None
        self._site_id: int | None = None
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

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}

    def _graphql(self):
        """This thread's gql session to the GraphQL path in use, connected once."""
        path = self.graphql_path

        def make():
            transport = RequestsHTTPTransport(url=f"{self.url}{path}", headers=self._headers(),
                                              timeout=self.timeout, retries=0)
            client = Client(transport=transport, fetch_schema_from_transport=False)
            return client.connect_sync(), client.close_sync
        return self._session(f"graphql {path}", make)

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
            if exc.code == 404 and self.graphql_path in GRAPHQL_PATHS[:-1]:
                # No /api/v4/geo/graphql here: the site's own GraphQL path.
                self.graphql_path = GRAPHQL_PATHS[GRAPHQL_PATHS.index(self.graphql_path) + 1]
                return self.execute(query, variables)
            if exc.code == 401:
                raise SiteClientError(f"{self.url} refused the token (HTTP 401): give a "
                                      "valid access token in Settings") from None
            if exc.code == 404:
                raise SiteClientError(f"{self.url}{self.graphql_path} does not exist (HTTP "
                                      "404): no such site, or no GraphQL there") from None
            raise SiteClientError(f"{self.url} answered HTTP {exc.code}") from None
        except (TransportError, requests.RequestException, OSError) as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None

    def _get(self, path: str, missing_ok: bool = False):
        try:
            response = self._http().get(f"{self.url}{path}", timeout=self.timeout,
                                        headers=self._headers())
        except requests.RequestException as exc:
            raise SiteClientError(f"cannot reach {self.url}: {_reason(exc)}") from None
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code == 401:
            said = _refusal(response, f"{self.url}{path}")
            # A Geo Console site says why; GitLab says only "401 Unauthorized".
            raise SiteClientError(
                said if not said.endswith("HTTP 401") and "401 Unauthorized" not in said
                else f"{self.url} refused the token (HTTP 401): give a valid access token "
                     "in Settings")
        if response.status_code != 200:
            raise SiteClientError(_refusal(response, f"{self.url}{path}"))
        try:
            return response.json()
        except ValueError:
            raise SiteClientError(f"{self.url}{path} did not answer JSON") from None

    def through(self, site_id: int) -> "SiteClient":
        """A client of another site of this GitLab deployment, reached
        through this site's proxy (`POST /api/v4/geo/node_proxy/:id/graphql`,
        for administrators): registries are answered only by the site that
        keeps them. Its status comes from `GET /api/v4/geo_sites/:id/status`."""
        other = SiteClient(self.url, self.api_token, self.timeout)
        other.graphql_path = f"/api/v4/geo/node_proxy/{int(site_id)}/graphql"
        other._site_id = int(site_id)
        return other

    # --- what the site is --------------------------------------------------------------

    def schema(self) -> SiteSchema:
        """What the site's GraphQL offers, asked once."""
        if self._schema is None:
            try:
                schema = discover(self.execute)
            except SchemaError as exc:
                raise SiteClientError(f"{self.url}: {exc}") from None
            with self._lock:
                self._schema = schema
        return self._schema

    def node(self) -> dict:
        fields = [name for name in NODE_FIELDS if name in self.schema().node_fields]
        data = self.execute("{ geoNode { " + " ".join(fields) + " } }")
        if data["geoNode"] is None:
            raise SiteClientError(f"{self.url} did not describe itself (the token may not "
                                  "belong to an administrator)")
        return data["geoNode"]

    def site_id(self) -> int:
        """The site's id in GitLab's REST API: its GeoNode's global id."""
        if self._site_id is None:
            self._site_id = registry_id_of(self.identity()["id"])
        return self._site_id

    def identity(self) -> dict:
        """The site's GeoNode id and name, as learnt with its schema (no
        request of its own)."""
        node = self.schema().node
        if node is None:
            raise SiteClientError(
                f"{self.url} did not describe itself: " + (
                    "the token may not belong to an administrator" if self.api_token else
                    "it needs an access token (give one in Settings, or set "
                    "GEO_CONSOLE_GITLAB_TOKEN)"))
        return node

    def status(self) -> dict:
        """The site's status, as GitLab serves it: `GET
        /api/v4/geo_sites/:id/status` (GitLab has no `current` route)."""
        return self._get(f"/api/v4/geo_sites/{self.site_id()}/status")

    def all_statuses(self) -> list[dict]:
        """Every site's status: a primary's list, or a secondary's, which it
        asks its primary for."""
        statuses = self._get("/api/v4/geo_sites/status")
        if not isinstance(statuses, list):
            raise SiteClientError(f"{self.url} did not answer with a list of sites")
        return statuses

    def sites(self) -> list[dict]:
        """GitLab's `GET /api/v4/geo_sites`: every site of the deployment."""
        sites = self._get("/api/v4/geo_sites")
        if not isinstance(sites, list):
            raise SiteClientError(f"{self.url} did not answer with a list of sites")
        return sites

    def types(self) -> list[ReplicableType]:
        """The registry types the site's schema has, in its order."""
        schema = self.schema()
        if schema.primary:
            raise SiteClientError(f"{self.url} is a primary site: registries are kept by "
                                  "secondaries (it is not a secondary)")
        if not schema.registry_fields:
            raise SiteClientError(f"{self.url} has no registries (it is not a secondary)")
        return schema.types

    # --- reading ---------------------------------------------------------------------

    def page_size(self, kind: ReplicableType) -> int:
        """The largest page worth asking for: 500 from a site that takes
        `offset` (Geo Console's), else GitLab's max_page_size of 100."""
        return 500 if "offset" in self._field(kind).arguments else 100

    def can_narrow(self, kind: ReplicableType, argument: str) -> bool:
        return argument in self._field(kind).arguments

    def counts(self, kind: ReplicableType) -> bool:
        return self._field(kind).counts

    def _field(self, kind: ReplicableType):
        try:
            return self.schema().registry(kind)
        except SchemaError as exc:
            raise SiteClientError(f"{self.url}: {exc}") from None

    def registries(self, kind: ReplicableType, selection: RegistrySelection | None = None, *,
                   first: int | None = None, after: str | None = None,
                   last: int | None = None, before: str | None = None,
                   sort: str = "ID_ASC", count_limit: int = 1000,
                   offset: int | None = None) -> RegistryPage:
        """A page of registries. Raises SiteClientError for a narrowing, sort
        or offset the site's schema does not have (RemoteSource works round
        them), never sends it."""
        selection = selection or RegistrySelection()
        field = self._field(kind)
        values = {
            "first": first, "last": last, "before": before, "after": after,
            **_narrowing(kind, selection), "keyword": selection.keyword,
            "sort": None if sort == "ID_ASC" and "sort" not in field.arguments else sort,
            "syncFailure": selection.sync_failure,
            "verificationFailure": selection.verification_failure, "offset": offset or None}
        lacking = [name for name, value in values.items()
                   if value is not None and name not in field.arguments]
        if lacking:
            raise SiteClientError(f"{self.url} cannot narrow or order {kind.title} registries "
                                  f"by {', '.join(lacking)}")
        query, declared = registries_document(field, count=True)
        variables = {name: values[name] for name in declared}
        if field.counts:
            variables["countLimit"] = count_limit
        connection = (self.execute(query, variables)["geoNode"] or {}).get(field.field)
        if connection is None:
            raise SiteClientError(f"{self.url} has no {kind.title} registries "
                                  "(it is not a secondary, or the token cannot read them)")
        info = connection["pageInfo"]
        nodes = [dict(node, registryId=registry_id_of(node["id"]),
                      modelRecordId=_model_id(node, field.model_id_field),
                      gitlabPage=self._page_of(node.get("dataManagementDetailsPath")))
                 for node in connection["nodes"]]
        rows = [RegistryRow.from_graphql(node, kind.replicable_name) for node in nodes]
        return RegistryPage(nodes, rows, connection.get("count"), info["hasNextPage"],
                            info["hasPreviousPage"], info["startCursor"], info["endCursor"])

    def _page_of(self, path: str | None) -> str | None:
        """GitLab's page of a record, a path on the site, as a whole URL."""
        if not path:
            return None
        return path if "://" in path else f"{self.url}/{path.lstrip('/')}"

    def history(self, start: dt.datetime, end: dt.datetime | None = None, buckets: int = 200,
                kind: ReplicableType | None = None) -> list[dict] | None:
        """The site's recorded history, or None from a site that keeps none
        (GitLab)."""
        if not self.schema().has_history:
            return None
        query = f"""query($from: Time!, $to: Time, $buckets: Int, $replicable: String) {{
          geoNode {{ statusHistory(from: $from, to: $to, buckets: $buckets,
                                   replicable: $replicable) {{ {HISTORY_FIELDS} }} }} }}"""
        data = self.execute(query, {"from": start.isoformat(),
                                    "to": end.isoformat() if end else None,
                                    "buckets": buckets,
                                    "replicable": kind.replicable_name if kind else None})
        return (data["geoNode"] or {}).get("statusHistory") or []

    def failure_groups(self, kind: ReplicableType, limit: int = 100) -> list[dict] | None:
        """The site's failures grouped by message, or None from a site that
        does not group them (GitLab)."""
        if not self.schema().has_failure_groups:
            return None
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
        query, variables = self._update_document(kind, registry_id, action.upper())
        result = self.execute(query, variables)["geoRegistriesUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result["registry"]

    def _update_document(self, kind: ReplicableType, registry_id: int,
                         action: str) -> tuple[str, dict]:
        """geoRegistriesUpdate as the site takes it: with registryClass where
        its input requires it (GitLab 16.x), never where it is gone (19.x)
        or only tolerated."""
        schema = self.schema()
        declared, passed = "$id: GeoBaseRegistryID!, $action: GeoRegistryAction!", \
            "registryId: $id, action: $action"
        variables = {"id": registry_gid(kind, registry_id), "action": action}
        written = schema.update_inputs.get("registryClass", "")
        if written.endswith("!"):
            declared += f", $class: {written}"
            passed += ", registryClass: $class"
            variables["class"] = self._registry_class(kind)
        query = f"""mutation({declared}) {{
          geoRegistriesUpdate(input: {{{passed}}}) {{
            errors registry {{ ... on {kind.graphql_name}Registry {{ id state
              verificationState }} }} }} }}"""
        return query, variables

    def _registry_class(self, kind: ReplicableType) -> str:
        try:
            return self.schema().registry_class(kind)
        except SchemaError as exc:
            raise SiteClientError(f"{self.url}: {exc}") from None

    def check_token(self, kind: ReplicableType) -> str:
        """"write" if the token may act, "read" if it may only read; raises
        SiteClientError if it is refused. GitLab says what a personal access
        token may do (`GET /api/v4/personal_access_tokens/self`: `api` acts,
        `read_api` reads); a Geo Console site is asked to resync the registry
        of the largest id there can be, which no sequence reaches, so nothing
        changes."""
        token = self._get("/api/v4/personal_access_tokens/self", missing_ok=True) \
            if self.api_token and not self.schema().geo_console else None
        if isinstance(token, dict) and isinstance(token.get("scopes"), list):
            if "api" in token["scopes"]:
                return "write"
            if "read_api" in token["scopes"]:
                return "read"
            raise SiteClientError(f"{self.url}: the token has neither the api nor the "
                                  "read_api scope")
        query, variables = self._update_document(kind, MAX_ID, "RESYNC")
        try:
            self.execute(query, variables)
        except SiteClientError as exc:
            if str(exc).startswith(READ_ONLY_REFUSAL):
                return "read"
            raise
        return "write"

    def bulk_update(self, action: str, kind: ReplicableType,
                    selection: RegistrySelection | None = None) -> int | None:
        """resync or reverify every registry of the selection's ids and
        states (RESYNC_ALL, REVERIFY_ALL) in one mutation; returns how many
        were scheduled where the site says (Geo Console's `updatedCount`),
        else None. Only for sites whose bulk mutation takes what the
        selection narrows by (`bulk_narrows_by`)."""
        selection = selection or RegistrySelection()
        if not selection.narrows_by_ids_and_states_only:
            raise SiteClientError("a bulk action narrows by registry ids and states only")
        variables = {"class": self._registry_class(kind),
                     "action": f"{action.upper().removesuffix('_ALL')}_ALL",
                     **_narrowing(kind, selection)}
        given = [name for name in ("ids", "replicationState", "verificationState")
                 if variables[name] is not None]
        schema = self.schema()
        if not schema.bulk_narrows_by(*given):
            raise SiteClientError(f"{self.url} has no bulk action narrowed by "
                                  f"{', '.join(given) or 'type'}")
        types = {"ids": "[GeoBaseRegistryID!]", "replicationState": "ReplicationStateEnum",
                 "verificationState": "VerificationStateEnum"}
        declared = "".join(f", ${name}: {types[name]}" for name in given)
        passed = "".join(f", {name}: ${name}" for name in given)
        counted = "updatedCount" if "updatedCount" in schema.bulk_payload else ""
        query = f"""mutation($class: GeoRegistryClass!, $action: GeoRegistriesBulkAction!
            {declared}) {{
          geoRegistriesBulkUpdate(input: {{registryClass: $class, action: $action{passed}}}) {{
            errors {counted} }} }}"""
        result = self.execute(query, {name: variables[name]
                                      for name in ("class", "action", *given)})
        result = result["geoRegistriesBulkUpdate"]
        if result["errors"]:
            raise SiteClientError("; ".join(result["errors"]))
        return result.get("updatedCount")


def _model_id(node: dict, field: str) -> int | None:
    value = node.get(field)
    return int(value) if value is not None and str(value).isdigit() else value


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
