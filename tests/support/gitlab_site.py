"""A GitLab Geo site stand-in on loopback, for contract tests of our client.

It answers the GraphQL and REST API of one Geo site the way GitLab does:

    site = GitLabSite(generation="19.2", name="geo-2", site_id=2, primary=False,
                      tokens={"glpat-api": ["api"], "glpat-read": ["read_api"]}).start()
    site.add_registries("PackageFile", 3, state="FAILED")
    ...  # point the client at site.url
    site.stop()

Every GraphQL document is parsed and validated against the schema of the
site's GitLab generation (tests/support/gitlab_schema.py) before anything
runs, and refused as GitLab refuses it: HTTP 200 with `{"errors": [...]}`.
The received documents are kept in `site.documents` for tests to inspect.

Routes:
  POST /api/graphql, POST /api/v4/geo/graphql      GraphQL (Query.geoNode, the
                                                    Geo mutations)
  GET  /api/v4/geo_sites[/:id], /api/v4/geo_sites[/:id]/status
  GET  /api/v4/personal_access_tokens/self, /api/v4/version
  POST /api/v4/geo/node_proxy/:id/graphql          GraphQL of another site of
                                                    the deployment (`peers`)

Data lives in plain dicts guarded by one lock; the server runs aiohttp in a
thread of its own with its own event loop, on 127.0.0.1 and a free port.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from functools import lru_cache, total_ordering
from typing import Any, Callable, Iterable

from aiohttp import web
from graphql import GraphQLError, GraphQLSchema, build_schema, execute, parse, validate
from graphql.language import StringValueNode

from backend.api.server import BackgroundServer
from tests.support import gitlab_schema
from tests.support.gitlab_schema import RESOURCE_ACCESS_ERROR, RegistryKind

MAX_PAGE_SIZE = 100          # GitLab's max_page_size (and default page size)
COUNT_LIMIT_MAX = 1000       # the largest (and default) `count(limit:)`
REVISION = "abc"
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)
GID_PATTERN = re.compile(r"^gid://gitlab/(?P<cls>[A-Za-z0-9_:]+)/(?P<id>\d+)$")
SORT_COLUMNS = {"ID": None, "VERIFIED_AT": "verifiedAt", "LAST_SYNCED_AT": "lastSyncedAt"}
NOT_FOUND = {"message": "404 Not Found"}
UNAUTHORIZED = {"message": "401 Unauthorized"}


# ------------------------------------------------------------------ small helpers

def _iso(moment: datetime) -> str:
    """GitLab's time format in GraphQL answers: 2024-01-01T00:00:00Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_cursor(values: dict) -> str:
    """An opaque cursor as GitLab's keyset pagination makes one: unpadded
    URL-safe base64 of a small JSON object of the ordering values."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        int(values["id"])
        return values
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise GraphQLError("Please provide a valid cursor") from None


def _parse_gid(value: str) -> tuple[str, int] | None:
    """"gid://gitlab/Geo::PackageFileRegistry/5" -> ("Geo::PackageFileRegistry", 5)."""
    match = GID_PATTERN.match(value) if isinstance(value, str) else None
    return (match["cls"], int(match["id"])) if match else None


def _token_of(request: web.Request) -> str | None:
    """The token a request carries: `Authorization: Bearer <t>` or `PRIVATE-TOKEN`."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("PRIVATE-TOKEN") or None


def _percentage(part: int, whole: int) -> str:
    """GitLab's `number_to_percentage(..., precision: 2)`: "85.00%"."""
    return f"{(100.0 * part / whole) if whole else 0.0:.2f}%"


# ------------------------------------------------------------------ the schema

def _global_id_scalar(scalar, accepted: Callable[[str], bool], model: str) -> None:
    """Give a global ID scalar GitLab's input checks: a well-formed gid of
    the right class (`GlobalIDType[model]`), else a coercion error."""
    def parse_value(value: Any) -> str:
        parsed = _parse_gid(value)
        if parsed is None:
            raise GraphQLError(f"{json.dumps(value)} is not a valid Global ID")
        if not accepted(parsed[0]):
            raise GraphQLError(f"{json.dumps(value)} does not represent an instance of {model}")
        return value

    def parse_literal(node, _variables=None) -> str:
        if not isinstance(node, StringValueNode):
            raise GraphQLError("A global ID must be a string")
        return parse_value(node.value)

    _set_coercion(scalar, parse_value, parse_literal, str)


def _set_coercion(scalar, parse_value: Callable, parse_literal: Callable,
                  serialize: Callable) -> None:
    """Install a scalar's coercion functions under both graphql-core names:
    3.2's parse_value/parse_literal/serialize and 3.3's coerce_* ones."""
    scalar.parse_value = scalar.coerce_input_value = parse_value
    scalar.parse_literal = parse_literal
    scalar.coerce_input_literal = lambda node: parse_literal(node)
    scalar.serialize = scalar.coerce_output_value = serialize


def _attach_scalars(schema: GraphQLSchema, generation: str) -> None:
    kinds = gitlab_schema.all_kinds(generation)
    registry_classes = {kind.gid_class for kind in kinds} | {"Geo::BaseRegistry"}
    _global_id_scalar(schema.type_map["GeoBaseRegistryID"], registry_classes.__contains__,
                      "Geo::BaseRegistry")
    if gitlab_schema.FACTS[generation].typed_registry_ids:
        for kind in gitlab_schema.registry_kinds(generation):
            _global_id_scalar(schema.type_map[kind.id_scalar], kind.gid_class.__eq__,
                              kind.gid_class)
    time = schema.type_map["Time"]
    _set_coercion(time, time.parse_value, time.parse_literal,
                  lambda value: _iso(value) if isinstance(value, datetime) else str(value))


def _attach_resolvers(schema: GraphQLSchema, generation: str) -> None:
    """Resolvers read the site from `info.context["site"]`, so one schema
    serves every site of a generation."""
    schema.query_type.fields["geoNode"].resolve = _resolve_geo_node
    geo_node = schema.type_map["GeoNode"]
    for kind in gitlab_schema.registry_kinds(generation):
        geo_node.fields[kind.field_name].resolve = _registries_resolver(kind)
        connection = schema.type_map[f"{kind.type_name}Connection"]
        if "count" in connection.fields:
            connection.fields["count"].resolve = _resolve_count
    mutations = schema.mutation_type.fields
    mutations["geoRegistriesUpdate"].resolve = _resolve_update
    if "geoRegistriesBulkUpdate" in mutations:
        mutations["geoRegistriesBulkUpdate"].resolve = _resolve_bulk_update
    schema.type_map["Registrable"].resolve_type = lambda value, _info, _type: value["__type"]


@lru_cache(maxsize=None)
def schema_for(generation: str) -> GraphQLSchema:
    """The executable schema of a GitLab generation (built once, shared)."""
    schema = build_schema(gitlab_schema.sdl(generation))
    _attach_scalars(schema, generation)
    _attach_resolvers(schema, generation)
    return schema


# ------------------------------------------------------------------ resolvers

def _resolve_geo_node(_root, info, name: str | None = None):
    """The current site (no `name`, or its own) or another site of the
    deployment by name; null for anonymous users, as GitLab's `read_geo`
    policy gives them nothing."""
    context = info.context
    if context["scopes"] is None:
        return None
    site: GitLabSite = context["site"]
    if name is None or name == site.name:
        return site.geo_node_view(current=True)
    for peer in site.peers:
        if peer.name == name:
            return peer.geo_node_view(current=False)
    return None


def _registries_resolver(kind: RegistryKind):
    """The resolver of one GeoNode registry field (`packageFileRegistries`)."""
    def resolve(node: dict, info, **args):
        if not node["__current"]:  # registries are answered by the site itself only
            return None
        site: GitLabSite = info.context["site"]
        return site.registry_connection(kind, args)
    return resolve


def _resolve_count(connection: dict, _info, limit: int = COUNT_LIMIT_MAX) -> int:
    """GitLab's limited count: above `limit` it answers `limit + 1`."""
    if limit is None or not 1 <= limit <= COUNT_LIMIT_MAX:
        raise GraphQLError(f"limit must be between 1 and {COUNT_LIMIT_MAX}")
    total = connection["__total"]
    return limit + 1 if total > limit else total


def _require_api_scope(info) -> None:
    """Mutations need a token with the `api` scope; others (read_api,
    anonymous) get GitLab's resource-not-available error."""
    scopes = info.context["scopes"]
    if scopes is None or "api" not in scopes:
        raise GraphQLError(RESOURCE_ACCESS_ERROR)


def _resolve_update(_root, info, input: dict):  # noqa: A002 - GraphQL's name
    _require_api_scope(info)
    site: GitLabSite = info.context["site"]
    return site.update_registry(input)


def _resolve_bulk_update(_root, info, input: dict):  # noqa: A002 - GraphQL's name
    _require_api_scope(info)
    site: GitLabSite = info.context["site"]
    return site.bulk_update_registries(input)


# ------------------------------------------------------------------ paging

def _sort_key(record: dict, column: str | None, descending: bool) -> tuple:
    """A key whose ascending order is the wanted order; null values last
    (as GitLab orders its registry timestamps), ties broken by id."""
    identity = -record["id"] if descending else record["id"]
    if column is None:
        return (identity,)
    value = record.get(column)
    if value is None:
        return (1, "", identity)
    return (0, _Reversed(value) if descending else value, identity)


@total_ordering
class _Reversed:
    """Wraps a value so that it sorts in the opposite order."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: "_Reversed") -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value


def _cursor_values(record: dict, column: str | None) -> dict:
    """The ordering values a record's cursor carries (the sort column, then id)."""
    values = {} if column is None else {_snake_column(column): record.get(column)}
    values["id"] = str(record["id"])
    return values


def _snake_column(column: str) -> str:
    """The database column name GitLab puts in its cursors: "verified_at"."""
    return re.sub(r"(?=[A-Z])", "_", column).lower()


def _key_from_cursor(cursor: str, column: str | None, descending: bool) -> tuple:
    """The sort key of the position a cursor names (its record may be gone)."""
    values = _decode_cursor(cursor)
    record = {"id": int(values["id"])}
    if column is not None:
        record[column] = values.get(_snake_column(column))
    return _sort_key(record, column, descending)


def _clamp(count: int | None) -> int | None:
    """graphql-ruby's limit on `first`/`last`: negative is 0, above the page size is capped."""
    if count is None:
        return None
    return max(0, min(count, MAX_PAGE_SIZE))


def paginate(records: list[dict], sort: str, after: str | None, before: str | None,
             first: int | None, last: int | None) -> tuple[list[tuple[str, dict]], dict]:
    """Relay cursor pagination as GitLab's keyset connections do it: returns
    the page as (cursor, record) pairs and the pageInfo."""
    name, _, direction = sort.rpartition("_")
    column, descending = SORT_COLUMNS[name], direction == "DESC"
    ordered = sorted(records, key=lambda r: _sort_key(r, column, descending))
    if after is not None:
        lower = _key_from_cursor(after, column, descending)
        ordered = [r for r in ordered if _sort_key(r, column, descending) > lower]
    if before is not None:
        upper = _key_from_cursor(before, column, descending)
        ordered = [r for r in ordered if _sort_key(r, column, descending) < upper]
    first, last = _clamp(first), _clamp(last)
    if first is None and last is None:
        first = MAX_PAGE_SIZE
    page = ordered
    if first is not None:
        page = page[:first]
    if last is not None:
        page = page[-last:] if last else []
    has_next = before is not None or (first is not None and len(ordered) > len(page)
                                      and last is None)
    has_previous = after is not None or (last is not None and
                                         len(ordered if first is None else ordered[:first])
                                         > len(page))
    edges = [(_encode_cursor(_cursor_values(r, column)), r) for r in page]
    page_info = {
        "hasNextPage": has_next,
        "hasPreviousPage": has_previous,
        "startCursor": edges[0][0] if edges else None,
        "endCursor": edges[-1][0] if edges else None,
    }
    return edges, page_info


# ------------------------------------------------------------------ the site

class GitLabSite:
    """One GitLab Geo site: its registries, its tokens, its HTTP server.

    generation   "16.3" or "19.2": the GraphQL schema and version it answers with
    name         the Geo site name (GeoNode.name, `geo_node_name`)
    site_id      its id in the Geo sites table (GeoNode id, REST `id`)
    primary      whether it is the primary site of its deployment
    tokens       personal access tokens it accepts: {token: [scopes]} (all admin)
    geo_graphql  False: `POST /api/v4/geo/graphql` answers 404 (only /api/graphql)
    peers        the other sites of its deployment (see `add_peer`)
    settings     GeoNode settings to override, by REST name
                 (`files_max_capacity`, `selective_sync_type`, ...)
    """

    def __init__(self, generation: str = "19.2", name: str = "geo-1", site_id: int = 1,
                 primary: bool = False, tokens: dict[str, Iterable[str]] | None = None,
                 geo_graphql: bool = True, peers: Iterable["GitLabSite"] = (),
                 settings: dict[str, Any] | None = None) -> None:
        self.generation = generation
        self.schema = schema_for(generation)
        self.name = name
        self.site_id = site_id
        self.primary = primary
        self.tokens = {token: list(scopes) for token, scopes in (tokens or {}).items()}
        self.geo_graphql = geo_graphql
        self.version = f"{generation}.0-ee"
        self.revision = REVISION
        self.settings: dict[str, Any] = {
            "enabled": True, "files_max_capacity": 10, "repos_max_capacity": 25,
            "verification_max_capacity": 100, "container_repositories_max_capacity": 10,
            "minimum_reverification_interval": 7, "sync_object_storage": False,
            "selective_sync_type": None, "selective_sync_shards": [],
            "selective_sync_namespace_ids": [], "internal_url": None,
        }
        self.settings.update(settings or {})
        self.status_overrides: dict[str, Any] = {}
        self.documents: list[tuple[str, str | None, dict | None]] = []
        self.bulk_calls: list[dict] = []
        self.update_calls: list[dict] = []
        self.port: int | None = None
        self._lock = threading.RLock()
        self._registries: dict[str, dict[int, dict]] = {}
        self._failures: list[int] = []
        self._deployment: list[GitLabSite] = [self]
        self._server: BackgroundServer | None = None
        for peer in peers:
            self.add_peer(peer)

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash) once started."""
        if self.port is None:
            raise RuntimeError(f"GitLab site {self.name!r} is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "GitLabSite":
        """Listen on 127.0.0.1 and a free port, in a thread of its own (the
        product's BackgroundServer, as every site in the tests)."""
        self._server = BackgroundServer(self._app(), "127.0.0.1", 0).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving; the data stays (a site can be started again)."""
        if self._server is not None:
            self._server.stop()
        self._server = None
        self.port = None

    def __enter__(self) -> "GitLabSite":
        return self.start() if self.port is None else self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._failure_middleware,
                                           self._rest_token_middleware])
        app.router.add_post("/api/graphql", self._graphql_route)
        app.router.add_post("/api/v4/geo/graphql", self._geo_graphql_route)
        app.router.add_post("/api/v4/geo/node_proxy/{id}/graphql", self._node_proxy_route)
        app.router.add_get("/api/v4/geo_sites", self._sites_route)
        app.router.add_get("/api/v4/geo_sites/status", self._statuses_route)
        app.router.add_get("/api/v4/geo_sites/{id}", self._site_route)
        app.router.add_get("/api/v4/geo_sites/{id}/status", self._status_route)
        app.router.add_get("/api/v4/personal_access_tokens/self", self._token_route)
        app.router.add_get("/api/v4/version", self._version_route)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        return app

    # -------------------------------------------------------------- deployment

    def add_peer(self, other: "GitLabSite") -> None:
        """Make `other` (and the sites it knows) part of this site's
        deployment: every site of the merged deployment knows every other."""
        merged = {id(site): site for site in self._deployment + other._deployment}
        sites = sorted(merged.values(), key=lambda site: site.site_id)
        ids = [site.site_id for site in sites]
        if len(set(ids)) != len(ids):
            raise ValueError(f"two sites of one deployment share a site_id: {ids}")
        for site in sites:
            site._deployment = sites

    @property
    def peers(self) -> list["GitLabSite"]:
        """The other sites of the deployment, by site id."""
        return [site for site in self._deployment if site is not self]

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` requests (any route) with HTTP `status`."""
        with self._lock:
            self._failures.extend([status] * times)

    def set_status(self, **fields: Any) -> None:
        """Override fields of this site's REST status (`healthy=False,
        health="..."`, `db_replication_lag_seconds=30`, ...)."""
        with self._lock:
            self.status_overrides.update(fields)

    # -------------------------------------------------------------- data

    def _kind(self, graphql_type: str) -> RegistryKind:
        return gitlab_schema.kind_named(self.generation, graphql_type)

    @staticmethod
    def _field_names(kind: RegistryKind) -> set[str]:
        """The fields a registry record may be given (those of either generation)."""
        fields = gitlab_schema.REGISTRY_FIELDS_16_3 + gitlab_schema.REGISTRY_FIELDS_ADDED_19_2
        return {f.name for f in fields if f.name != "id"} | {kind.model_id_field}

    def add_registries(self, graphql_type: str, count: int, **fields: Any) -> list[int]:
        """Create `count` registries of a type ("PackageFile"), ids 1, 2, ...
        per type: synced and verified unless `fields` say otherwise (GraphQL
        field names; a callable value is called with the registry id).
        Returns the new ids."""
        kind = self._kind(graphql_type)
        unknown = set(fields) - self._field_names(kind)
        if unknown:
            raise ValueError(f"{kind.type_name} has no field(s) {sorted(unknown)}")
        with self._lock:
            table = self._registries.setdefault(kind.name, {})
            start = max(table, default=0) + 1
            ids = list(range(start, start + count))
            for registry_id in ids:
                record = self._default_record(kind, registry_id)
                for name, value in fields.items():
                    record[name] = value(registry_id) if callable(value) else value
                table[registry_id] = record
        return ids

    def _default_record(self, kind: RegistryKind, registry_id: int) -> dict:
        created = BASE_TIME + timedelta(minutes=registry_id)
        model_id = registry_id + 1000
        return {
            "id": registry_id,
            kind.model_id_field: str(model_id),
            "modelRecordId": model_id,
            "createdAt": _iso(created),
            "lastSyncedAt": _iso(created + timedelta(seconds=30)),
            "lastSyncFailure": None,
            "retryAt": None,
            "retryCount": 0,
            "state": "SYNCED",
            "verificationChecksum": hashlib.sha256(f"{kind.name}/{model_id}".encode())
            .hexdigest()[:40],
            "verificationChecksumMismatched": None,
            "checksumMismatch": False,
            "verificationFailure": None,
            "verificationRetryAt": None,
            "verificationRetryCount": 0,
            "verificationStartedAt": _iso(created + timedelta(seconds=40)),
            "verificationState": "SUCCEEDED",
            "verifiedAt": _iso(created + timedelta(seconds=45)),
            "missingOnPrimary": False,
            "forceToRedownload": False,
            "dataManagementDetailsPath": f"/admin/data_management/{kind.plural}/{model_id}",
        }

    def registry(self, graphql_type: str, registry_id: int) -> dict:
        """A copy of one registry's fields (KeyError when there is none)."""
        kind = self._kind(graphql_type)
        with self._lock:
            return dict(self._registries.get(kind.name, {})[registry_id])

    def registries(self, graphql_type: str) -> list[dict]:
        """Copies of every registry of a type, by id."""
        kind = self._kind(graphql_type)
        with self._lock:
            table = self._registries.get(kind.name, {})
            return [dict(table[key]) for key in sorted(table)]

    def _node(self, kind: RegistryKind, record: dict) -> dict:
        """A registry as GraphQL answers it (its id a global ID)."""
        node = dict(record)
        node["id"] = kind.gid(record["id"])
        node["__type"] = kind.type_name
        return node

    # -------------------------------------------------------------- GraphQL data

    def geo_node_view(self, current: bool) -> dict:
        """The GeoNode object of this site; registries only when `current`."""
        settings = self.settings
        return {
            "__current": current,
            "id": f"gid://gitlab/GeoNode/{self.site_id}",
            "name": self.name,
            "url": self._public_url(),
            "internalUrl": settings["internal_url"] or self._public_url(),
            "primary": self.primary,
            "enabled": settings["enabled"],
            "filesMaxCapacity": settings["files_max_capacity"],
            "reposMaxCapacity": settings["repos_max_capacity"],
            "verificationMaxCapacity": settings["verification_max_capacity"],
            "containerRepositoriesMaxCapacity": settings["container_repositories_max_capacity"],
            "minimumReverificationInterval": settings["minimum_reverification_interval"],
            "syncObjectStorage": settings["sync_object_storage"],
            "selectiveSyncType": settings["selective_sync_type"],
            "selectiveSyncShards": list(settings["selective_sync_shards"]),
        }

    def _public_url(self) -> str:
        """GitLab's URLs end with a slash; a stopped site keeps a placeholder."""
        return f"{self.url}/" if self.port is not None else f"http://{self.name}.invalid/"

    def _matching(self, kind: RegistryKind, ids: list[str] | None,
                  replication_state: str | None, verification_state: str | None,
                  keyword: str | None = None) -> list[dict]:
        """The registries of a kind that pass the filters (call with the lock held)."""
        records = list(self._registries.get(kind.name, {}).values())
        if ids is not None:
            wanted = {parsed[1] for parsed in map(_parse_gid, ids)
                      if parsed is not None and parsed[0] == kind.gid_class}
            records = [r for r in records if r["id"] in wanted]
        if replication_state is not None:
            records = [r for r in records if r["state"] == replication_state]
        if verification_state is not None:
            records = [r for r in records if r["verificationState"] == verification_state]
        if keyword:
            needle = keyword.lower()
            records = [r for r in records
                       if any(needle in (r.get(name) or "").lower()
                              for name in ("lastSyncFailure", "verificationFailure"))]
        return records

    def registry_connection(self, kind: RegistryKind, args: dict) -> dict:
        """The connection a GeoNode registry field answers."""
        with self._lock:
            records = self._matching(kind, args.get("ids"), args.get("replicationState"),
                                     args.get("verificationState"), args.get("keyword"))
            edges, page_info = paginate(records, args.get("sort") or "ID_ASC",
                                        args.get("after"), args.get("before"),
                                        args.get("first"), args.get("last"))
            nodes = [self._node(kind, record) for _, record in edges]
        return {
            "__total": len(records),
            "edges": [{"cursor": cursor, "node": node}
                      for (cursor, _), node in zip(edges, nodes)],
            "nodes": nodes,
            "pageInfo": page_info,
        }

    def _find_by_gid(self, gid: str) -> tuple[RegistryKind, dict]:
        parsed = _parse_gid(gid)
        for kind in gitlab_schema.all_kinds(self.generation):
            if parsed is not None and parsed[0] == kind.gid_class:
                record = self._registries.get(kind.name, {}).get(parsed[1])
                if record is not None:
                    return kind, record
        raise GraphQLError(RESOURCE_ACCESS_ERROR)

    def update_registry(self, values: dict) -> dict:
        """geoRegistriesUpdate: RESYNC makes the registry pending again,
        REVERIFY its verification."""
        with self._lock:
            kind, record = self._find_by_gid(values["registryId"])
            payload = {"clientMutationId": values.get("clientMutationId"), "errors": []}
            wanted_class = values.get("registryClass")
            if wanted_class is not None and wanted_class != kind.class_value:
                payload.update(errors=[f"Registry class {wanted_class} does not match "
                                       f"registry {values['registryId']}"], registry=None)
                return payload
            self._apply(record, values["action"])
            self.update_calls.append({"registry_class": kind.class_value, "id": record["id"],
                                      "action": values["action"]})
            payload["registry"] = self._node(kind, record)
            return payload

    @staticmethod
    def _apply(record: dict, action: str) -> None:
        if action in ("RESYNC", "RESYNC_ALL"):
            record.update(state="PENDING", retryCount=0, retryAt=None)
        else:
            record.update(verificationState="PENDING", verificationRetryCount=0,
                          verificationRetryAt=None)

    def bulk_update_registries(self, values: dict) -> dict:
        """geoRegistriesBulkUpdate (19.2): RESYNC_ALL or REVERIFY_ALL on the
        registries of a class that pass the optional filters."""
        kind = self._kind(values["registryClass"])
        with self._lock:
            records = self._matching(kind, values.get("ids"), values.get("replicationState"),
                                     values.get("verificationState"))
            for record in records:
                self._apply(record, values["action"])
            self.bulk_calls.append({
                "registry_class": values["registryClass"], "action": values["action"],
                "ids": values.get("ids"), "replication_state": values.get("replicationState"),
                "verification_state": values.get("verificationState"),
            })
        return {"clientMutationId": values.get("clientMutationId"), "errors": [],
                "registryClass": values["registryClass"]}

    def answer_graphql(self, body: Any, scopes: list[str] | None, path: str) -> dict | list:
        """Answer a GraphQL request body (one operation or a batch list), as
        a user with `scopes` (None: anonymous). Records each document."""
        if isinstance(body, list):
            return [self._answer_one(item, scopes, path) for item in body]
        return self._answer_one(body, scopes, path)

    def _record(self, path: str, body: dict) -> None:
        """Keep a received document for tests: (path, query, variables)."""
        with self._lock:
            self.documents.append((path, body.get("query"), body.get("variables")))

    def _answer_one(self, body: Any, scopes: list[str] | None, path: str) -> dict:
        if not isinstance(body, dict):
            return {"errors": [{"message": "Unexpected request body"}]}
        query, variables = body.get("query"), body.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables.strip() else None
            except ValueError:
                return {"errors": [{"message": "Variables are invalid JSON"}]}
        self._record(path, body)
        if not query:
            return {"errors": [{"message": "No query string was present"}]}
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        errors = validate(self.schema, document)
        if errors:
            return {"errors": [error.formatted for error in errors]}
        context = {"site": self, "scopes": None if scopes is None else set(scopes)}
        result = execute(self.schema, document, context_value=context,
                         variable_values=variables if isinstance(variables, dict) else None,
                         operation_name=body.get("operationName"))
        return result.formatted

    # -------------------------------------------------------------- REST data

    def site_object(self, viewer: "GitLabSite") -> dict:
        """This site as `GET /api/v4/geo_sites` lists it on `viewer`."""
        base = viewer._public_url()
        public = self._public_url()
        settings = self.settings
        entry = {
            "id": self.site_id, "name": self.name, "url": public,
            "internal_url": settings["internal_url"] or public,
            "primary": self.primary, "enabled": settings["enabled"],
            "current": self is viewer,
            "files_max_capacity": settings["files_max_capacity"],
            "repos_max_capacity": settings["repos_max_capacity"],
            "verification_max_capacity": settings["verification_max_capacity"],
            "container_repositories_max_capacity":
                settings["container_repositories_max_capacity"],
            "selective_sync_type": settings["selective_sync_type"],
            "selective_sync_shards": list(settings["selective_sync_shards"]),
            "selective_sync_namespace_ids": list(settings["selective_sync_namespace_ids"]),
            "minimum_reverification_interval": settings["minimum_reverification_interval"],
            "sync_object_storage": settings["sync_object_storage"],
            "web_edit_url": f"{base}admin/geo/sites/{self.site_id}/edit",
            "_links": {
                "self": f"{base}api/v4/geo_sites/{self.site_id}",
                "status": f"{base}api/v4/geo_sites/{self.site_id}/status",
                "repair": f"{base}api/v4/geo_sites/{self.site_id}/repair",
            },
        }
        if not self.primary:
            entry["web_geo_replication_details_url"] = \
                f"{public}admin/geo/sites/{self.site_id}/replication/lfs_objects"
        return entry

    def status_object(self) -> dict:
        """This site's Geo status, computed from its registries."""
        now = datetime.now(timezone.utc)
        status: dict[str, Any] = {
            "geo_node_id": self.site_id,
            "healthy": True,
            "health": "Healthy",
            "missing_oauth_application": False,
            "db_replication_lag_seconds": None if self.primary else 0,
            "last_event_id": 1000,
            "last_event_timestamp": int(now.timestamp()),
            "cursor_last_event_id": None if self.primary else 1000,
            "cursor_last_event_timestamp": None if self.primary else int(now.timestamp()),
            "last_successful_status_check_timestamp": int(now.timestamp()),
            "version": self.version,
            "revision": self.revision,
            "selective_sync_type": self.settings["selective_sync_type"],
            "namespaces": [],
            "storage_shards_match": True,
            "updated_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        with self._lock:
            for kind in gitlab_schema.registry_kinds(self.generation):
                status.update(self._type_status(kind))
            status.update(self.status_overrides)
        status.setdefault("health_status", "Healthy" if status["healthy"] else "Unhealthy")
        return status

    def _type_status(self, kind: RegistryKind) -> dict:
        """The status fields of one replicable type (call with the lock held)."""
        records = list(self._registries.get(kind.name, {}).values())
        prefix = kind.plural
        verified = sum(r["verificationState"] == "SUCCEEDED" for r in records)
        verify_failed = sum(r["verificationState"] == "FAILED" for r in records)
        fields: dict[str, Any] = {f"{prefix}_count": len(records)}
        if self.primary:
            fields.update({
                f"{prefix}_checksum_total_count": len(records),
                f"{prefix}_checksummed_count": verified,
                f"{prefix}_checksum_failed_count": verify_failed,
            })
            for name in ("registry_count", "synced_count", "failed_count", "verified_count",
                         "verification_failed_count", "verification_total_count",
                         "synced_in_percentage", "verified_in_percentage"):
                fields[f"{prefix}_{name}"] = None
            return fields
        synced = sum(r["state"] == "SYNCED" for r in records)
        fields.update({
            f"{prefix}_checksum_total_count": None,
            f"{prefix}_checksummed_count": None,
            f"{prefix}_checksum_failed_count": None,
            f"{prefix}_registry_count": len(records),
            f"{prefix}_synced_count": synced,
            f"{prefix}_failed_count": sum(r["state"] == "FAILED" for r in records),
            f"{prefix}_verified_count": verified,
            f"{prefix}_verification_failed_count": verify_failed,
            f"{prefix}_verification_total_count": synced,
            f"{prefix}_synced_in_percentage": _percentage(synced, len(records)),
            f"{prefix}_verified_in_percentage": _percentage(verified, len(records)),
        })
        return fields

    def _site_by_id(self, raw_id: str) -> "GitLabSite | web.Response":
        """The deployment's site of a REST `:id`, or the error answer."""
        if not raw_id.isdigit():
            return web.json_response({"error": "id is invalid"}, status=400)
        for site in self._deployment:
            if site.site_id == int(raw_id):
                return site
        return web.json_response({"message": "404 GeoNode Not Found"}, status=404)

    # -------------------------------------------------------------- HTTP routes

    @web.middleware
    async def _failure_middleware(self, request: web.Request, handler):
        with self._lock:
            status = self._failures.pop(0) if self._failures else None
        if status is not None:
            return web.json_response({"message": f"{status} injected failure"}, status=status)
        return await handler(request)

    @web.middleware
    async def _rest_token_middleware(self, request: web.Request, handler):
        """Every REST route (and the node proxy) needs a token of any scope;
        GraphQL answers anonymous requests on its own terms."""
        if request.path not in ("/api/graphql", "/api/v4/geo/graphql"):
            refusal = self._rest_scopes(request)
            if isinstance(refusal, web.Response):
                return refusal
        return await handler(request)

    def _scopes(self, request: web.Request) -> list[str] | None | web.Response:
        """The scopes of the request's token, None without one, or a 401 answer."""
        token = _token_of(request)
        if token is None:
            return None
        if token not in self.tokens:
            return web.json_response(UNAUTHORIZED, status=401)
        return self.tokens[token]

    def _rest_scopes(self, request: web.Request) -> list[str] | web.Response:
        """REST needs a token (any scope)."""
        scopes = self._scopes(request)
        return web.json_response(UNAUTHORIZED, status=401) if scopes is None else scopes

    async def _graphql_route(self, request: web.Request) -> web.Response:
        token = _token_of(request)
        if token is not None and token not in self.tokens:
            return web.json_response({"errors": [{"message": "Invalid token"}]}, status=401)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errors": [{"message": "Invalid JSON body"}]}, status=400)
        scopes = self.tokens[token] if token is not None else None
        return web.json_response(self.answer_graphql(body, scopes, request.path))

    async def _geo_graphql_route(self, request: web.Request) -> web.Response:
        if not self.geo_graphql:
            return web.json_response(NOT_FOUND, status=404)
        return await self._graphql_route(request)

    async def _node_proxy_route(self, request: web.Request) -> web.Response:
        """The GraphQL of another site, through this one: the peer's handler
        is called directly, as the peer's own first token."""
        target = self._site_by_id(request.match_info["id"])
        if isinstance(target, web.Response):
            return target
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errors": [{"message": "Invalid JSON body"}]}, status=400)
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                self._record(request.path, item)
        with target._lock:
            failure = target._failures.pop(0) if target._failures else None
        if failure is not None:
            return web.json_response({"message": f"{failure} injected failure"}, status=failure)
        peer_scopes = next(iter(target.tokens.values()), None)
        answer = target.answer_graphql(body, peer_scopes, "/api/v4/geo/graphql")
        return web.json_response(answer)

    async def _sites_route(self, request: web.Request) -> web.Response:
        return web.json_response([site.site_object(self) for site in self._deployment])

    async def _site_route(self, request: web.Request) -> web.Response:
        site = self._site_by_id(request.match_info["id"])
        if isinstance(site, web.Response):
            return site
        return web.json_response(site.site_object(self))

    async def _statuses_route(self, request: web.Request) -> web.Response:
        return web.json_response([site.status_object() for site in self._deployment])

    async def _status_route(self, request: web.Request) -> web.Response:
        site = self._site_by_id(request.match_info["id"])
        if isinstance(site, web.Response):
            return site
        return web.json_response(site.status_object())

    async def _token_route(self, request: web.Request) -> web.Response:
        token = _token_of(request)
        number = list(self.tokens).index(token) + 1
        return web.json_response({
            "id": number, "name": f"token-{number}", "revoked": False,
            "created_at": _iso(BASE_TIME), "scopes": list(self.tokens[token]), "user_id": 1,
            "last_used_at": None, "active": True, "expires_at": None,
        })

    async def _version_route(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version, "revision": self.revision})

    async def _unknown_route(self, _request: web.Request) -> web.Response:
        return web.json_response({"error": "404 Not Found"}, status=404)
