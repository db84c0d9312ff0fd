"""The GraphQL schema, generated from the replicator registry.

Each registered type gets `<Type>Registry`, its connection and edge types, a
`Geo<Type>RegistryID` scalar, a `<types>Registries` field on GeoNode and a
`GeoRegistryClass` value; nothing here names Cool Widgets.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from graphql import (GraphQLArgument, GraphQLBoolean, GraphQLEnumType, GraphQLEnumValue,
                     GraphQLError, GraphQLField, GraphQLFloat, GraphQLID,
                     GraphQLInputField, GraphQLInputObjectType, GraphQLInt, GraphQLList,
                     GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, GraphQLSchema,
                     GraphQLString, GraphQLUnionType, StringValueNode)

from backend.api.graphql import global_ids
from backend.api.graphql.limits import MAX_PAGE_SIZE
from backend.framework.states import SyncState, VerificationState
from backend.secondary import registry_query
from backend.framework.failures import MISSING_ON_PRIMARY
from backend.secondary.registry_query import QueryError, RegistryQuery


class ApiError(GraphQLError):
    """An error for the client; never carries internals."""


@dataclass
class RequestContext:
    site: object
    authorized: bool


# --- scalars -------------------------------------------------------------------

def _serialize_time(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    raise GraphQLError(f"not a time: {value!r}")


def _parse_time(value):
    if not isinstance(value, str):
        raise GraphQLError("Time must be an ISO 8601 string")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"invalid Time {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


Time = GraphQLScalarType(
    "Time", description="Time in ISO 8601 (UTC).", serialize=_serialize_time, parse_value=_parse_time,
    parse_literal=lambda node, _vars=None: _parse_time(
        node.value if isinstance(node, StringValueNode) else None))


def _gid_scalar(name: str, description: str, accepted_models: set[str]):
    def parse(value):
        try:
            model, number = global_ids.parse_gid(value)
        except ValueError as exc:
            raise GraphQLError(str(exc)) from None
        if model not in accepted_models:
            raise GraphQLError(f"{value!r} does not identify a {name.removesuffix('ID')}")
        return model, number

    return GraphQLScalarType(
        name, description=description, serialize=str, parse_value=parse,
        parse_literal=lambda node, _vars=None: parse(
            node.value if isinstance(node, StringValueNode) else None))


# --- enums ---------------------------------------------------------------------

ReplicationStateEnum = GraphQLEnumType("ReplicationStateEnum", {
    state.name: GraphQLEnumValue(state, description=f"Replication {state.label}.")
    for state in SyncState})
RegistryState = GraphQLEnumType("RegistryState", {
    state.name: GraphQLEnumValue(state) for state in SyncState})
VerificationStateEnum = GraphQLEnumType("VerificationStateEnum", {
    state.name: GraphQLEnumValue(state) for state in VerificationState})
GeoRegistrySort = GraphQLEnumType("GeoRegistrySort", {
    name: GraphQLEnumValue(name) for name in registry_query.SORTS})
GeoRegistryAction = GraphQLEnumType("GeoRegistryAction", {
    "REVERIFY": GraphQLEnumValue("REVERIFY"), "RESYNC": GraphQLEnumValue("RESYNC")})
GeoRegistriesBulkAction = GraphQLEnumType("GeoRegistriesBulkAction", {
    "REVERIFY_ALL": GraphQLEnumValue("REVERIFY_ALL"),
    "RESYNC_ALL": GraphQLEnumValue("RESYNC_ALL")})

PageInfo = GraphQLObjectType("PageInfo", lambda: {
    "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "hasPreviousPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "startCursor": GraphQLField(GraphQLString),
    "endCursor": GraphQLField(GraphQLString),
})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _field(column: str, kind):
    return GraphQLField(kind, resolve=lambda row, _info: row[column])


def _text(column: str):
    return GraphQLField(GraphQLString, resolve=lambda row, _info: (
        row[column].decode("ascii", "replace") if row[column] is not None else None))


def _registry_type(replicator) -> GraphQLObjectType:
    fk = replicator.registry_fk
    fields = {
        "id": GraphQLField(GraphQLNonNull(GraphQLID), resolve=lambda row, _i: global_ids
                           .registry_gid(replicator, row["id"])),
        _camel(fk): GraphQLField(GraphQLNonNull(GraphQLID), resolve=lambda row, _i: row[fk]),
        "modelRecordId": _field(fk, GraphQLInt),
        "createdAt": _field("created_at", Time),
        "lastSyncedAt": _field("last_synced_at", Time),
        "retryAt": _field("retry_at", Time),
        "state": GraphQLField(RegistryState, resolve=lambda row, _i: SyncState(row["state"])),
        "retryCount": _field("retry_count", GraphQLInt),
        "lastSyncFailure": _field("last_sync_failure", GraphQLString),
        "missingOnPrimary": GraphQLField(GraphQLBoolean, resolve=lambda row, _i: (
            row["state"] == SyncState.FAILED and row["last_sync_failure"] == MISSING_ON_PRIMARY)),
        "verificationState": GraphQLField(VerificationStateEnum, resolve=lambda row, _i: (
            VerificationState(row["verification_state"]))),
        "verifiedAt": _field("verified_at", Time),
        "verificationStartedAt": _field("verification_started_at", Time),
        "verificationRetryAt": _field("verification_retry_at", Time),
        "verificationRetryCount": _field("verification_retry_count", GraphQLInt),
        "verificationFailure": _field("verification_failure", GraphQLString),
        "verificationChecksum": _text("verification_checksum"),
        "verificationChecksumMismatched": _text("verification_checksum_mismatched"),
        "checksumMismatch": _field("checksum_mismatch", GraphQLBoolean),
        "forceToRedownload": GraphQLField(
            GraphQLBoolean, resolve=lambda _row, _i: None,
            deprecation_reason="Deprecated in GitLab 17.10; always null."),
    }
    return GraphQLObjectType(f"{replicator.graphql_name}Registry", fields,
                             description=f"Replication state of one {replicator.title}.")


@dataclass
class ConnectionSource:
    """What a registry connection resolves from: the page plus how to count."""

    page: registry_query.Page
    count: object  # callable(limit) -> int


def _connection_type(replicator, node_type) -> GraphQLObjectType:
    name = f"{replicator.graphql_name}Registry"
    edge = GraphQLObjectType(f"{name}Edge", {
        "cursor": GraphQLField(GraphQLNonNull(GraphQLString)),
        "node": GraphQLField(node_type),
    })
    return GraphQLObjectType(f"{name}Connection", {
        "edges": GraphQLField(GraphQLList(edge), resolve=lambda source, _i: [
            {"cursor": cursor, "node": row}
            for cursor, row in zip(source.page.cursors, source.page.rows)]),
        "nodes": GraphQLField(GraphQLList(node_type), resolve=lambda source, _i: source.page.rows),
        "pageInfo": GraphQLField(GraphQLNonNull(PageInfo), resolve=lambda source, _i: {
            "hasNextPage": source.page.has_next_page,
            "hasPreviousPage": source.page.has_previous_page,
            "startCursor": source.page.start_cursor, "endCursor": source.page.end_cursor}),
        "count": GraphQLField(
            GraphQLInt, args={"limit": GraphQLArgument(GraphQLInt, default_value=1000)},
            description="Rows matching, up to limit; limit + 1 means more.",
            # An explicit `limit: null` arrives as None: it means the default.
            resolve=lambda source, _i, limit=1000: source.count(
                1000 if limit is None else limit)),
    })


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except (QueryError, ValueError) as exc:
        raise ApiError(str(exc)) from None


def _registries_field(replicator, connection, id_scalar) -> GraphQLField:
    def resolve(node, info, first=None, last=None, before=None, after=None, ids=None,
                replicationState=None, verificationState=None, keyword=None, sort="ID_ASC",
                offset=None):
        site = info.context.site
        engine = site.tracking_engine
        if engine is None or not node.get("current"):
            return None  # registries live in the tracking DB of the site queried
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise ApiError(f"{name} must be between 0 and {MAX_PAGE_SIZE}")
        query = _call(RegistryQuery, ids=None if ids is None else tuple(i for _m, i in ids),
                      replication_state=replicationState, verification_state=verificationState,
                      keyword=keyword, sort=sort or "ID_ASC")
        page = _call(registry_query.fetch_page, engine, replicator, query, first=first,
                     last=last, before=before or None, after=after or None, offset=offset,
                     max_page_size=MAX_PAGE_SIZE)
        return ConnectionSource(page, lambda limit: _call(
            registry_query.capped_count, engine, replicator, query, limit))

    return GraphQLField(connection, args={
        "first": GraphQLArgument(GraphQLInt), "last": GraphQLArgument(GraphQLInt),
        "before": GraphQLArgument(GraphQLString), "after": GraphQLArgument(GraphQLString),
        "ids": GraphQLArgument(GraphQLList(GraphQLNonNull(id_scalar))),
        "replicationState": GraphQLArgument(ReplicationStateEnum),
        "verificationState": GraphQLArgument(VerificationStateEnum),
        "keyword": GraphQLArgument(GraphQLString),
        "sort": GraphQLArgument(GeoRegistrySort),
        "offset": GraphQLArgument(GraphQLInt, description=(
            "Geo Console extension: rows to skip before a forward page, for "
            "random access (the console's table).")),
    }, resolve=resolve, description=f"{replicator.title} registries of this site.")


FailureGroup = GraphQLObjectType("GeoRegistryFailureGroup", {
    "message": _field("message", GraphQLString),
    "count": _field("count", GraphQLInt),
    "lastSeenAt": _field("last_seen_at", Time),
}, description="Failed registries sharing one failure message.")


def _resolve_failure_groups(node, info, replicable=None, limit=50):
    site = info.context.site
    if site.tracking_engine is None or not node.get("current"):
        return None
    names = {r.replicable_name: r for r in site.replicators}
    replicable = replicable or next(iter(names))
    if replicable not in names:
        raise ApiError(f"unknown replicable {replicable!r}")
    limit = 50 if limit is None else limit  # an explicit null means the default
    if not 1 <= limit <= 1000:
        raise ApiError("limit must be between 1 and 1000")
    return registry_query.failure_groups(site.tracking_engine, names[replicable], limit)


HistoryPoint = GraphQLObjectType("GeoStatusHistoryPoint", {
    **{_camel(name): _field(name, kind) for name, kind in (
        ("time", Time), ("registry_count", GraphQLInt), ("synced_count", GraphQLInt),
        ("failed_count", GraphQLInt), ("verification_total_count", GraphQLInt),
        ("verified_count", GraphQLInt), ("verification_failed_count", GraphQLInt),
        ("synced_percentage", GraphQLFloat), ("verified_percentage", GraphQLFloat),
        ("syncs_succeeded_per_minute", GraphQLFloat), ("syncs_failed_per_minute", GraphQLFloat),
        ("verifications_succeeded_per_minute", GraphQLFloat),
        ("verifications_failed_per_minute", GraphQLFloat),
        ("bytes_per_second", GraphQLFloat))},
}, description="Status over time: per bucket the newest counts and the work done as rates.")


def build_schema(replicators) -> GraphQLSchema:
    registry_types, id_scalars, connections = {}, {}, {}
    models = {global_ids.registry_model(r): r for r in replicators}
    for replicator in replicators:
        registry_types[replicator] = _registry_type(replicator)
        connections[replicator] = _connection_type(replicator, registry_types[replicator])
        id_scalars[replicator] = _gid_scalar(
            f"Geo{replicator.graphql_name}RegistryID",
            f"A global id of a {replicator.title} registry, "
            f"gid://gitlab/{global_ids.registry_model(replicator)}/<id>.",
            {global_ids.registry_model(replicator)})
    base_id = _gid_scalar("GeoBaseRegistryID", "A global id of any Geo registry.",
                          set(models))
    registry_class = GraphQLEnumType("GeoRegistryClass", {
        f"{replicator.replicable_name.upper()}_REGISTRY": GraphQLEnumValue(replicator)
        for replicator in replicators})
    registrable = GraphQLUnionType(
        "Registrable", list(registry_types.values()),
        resolve_type=lambda row, _info, _type: row["__typename"].name)

    node_fields = {
        "id": GraphQLField(GraphQLNonNull(GraphQLID)),
        "name": GraphQLField(GraphQLString), "url": GraphQLField(GraphQLString),
        "internalUrl": GraphQLField(GraphQLString),
        "primary": GraphQLField(GraphQLBoolean), "enabled": GraphQLField(GraphQLBoolean),
        "filesMaxCapacity": GraphQLField(GraphQLInt),
        "reposMaxCapacity": GraphQLField(GraphQLInt),
        "verificationMaxCapacity": GraphQLField(GraphQLInt),
        "containerRepositoriesMaxCapacity": GraphQLField(GraphQLInt),
        "syncObjectStorage": GraphQLField(GraphQLBoolean),
        "selectiveSyncType": GraphQLField(GraphQLString),
        "selectiveSyncShards": GraphQLField(GraphQLList(GraphQLNonNull(GraphQLString))),
        "minimumReverificationInterval": GraphQLField(GraphQLInt),
        "statusHistory": GraphQLField(
            GraphQLList(HistoryPoint),
            args={"replicable": GraphQLArgument(GraphQLString),
                  "from": GraphQLArgument(GraphQLNonNull(Time)),
                  "to": GraphQLArgument(Time),
                  "buckets": GraphQLArgument(GraphQLInt, default_value=200)},
            resolve=_resolve_history,
            description="Status snapshots of this site over [from, to], bucketed."),
        "registryFailureGroups": GraphQLField(
            GraphQLList(FailureGroup),
            args={"replicable": GraphQLArgument(GraphQLString),
                  "limit": GraphQLArgument(GraphQLInt, default_value=50)},
            resolve=_resolve_failure_groups,
            description="Geo Console extension: failures grouped by message, newest first."),
    }
    for replicator in replicators:
        field_name = _camel(replicator.replicable_name) + "Registries"
        node_fields[field_name] = _registries_field(replicator, connections[replicator],
                                                    id_scalars[replicator])
    geo_node = GraphQLObjectType("GeoNode", node_fields, description="A Geo site.")

    query = GraphQLObjectType("Query", {
        "geoNode": GraphQLField(geo_node, args={"name": GraphQLArgument(GraphQLString)},
                                resolve=lambda _root, info, name=None:
                                info.context.site.geo_node(name)),
    })

    update_input = GraphQLInputObjectType("GeoRegistriesUpdateInput", {
        "registryId": GraphQLInputField(GraphQLNonNull(base_id)),
        "action": GraphQLInputField(GraphQLNonNull(GeoRegistryAction)),
        "registryClass": GraphQLInputField(registry_class, deprecation_reason="Unused."),
        "clientMutationId": GraphQLInputField(GraphQLString),
    })
    update_payload = GraphQLObjectType("GeoRegistriesUpdatePayload", {
        "registry": GraphQLField(registrable),
        "errors": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString)))),
        "clientMutationId": GraphQLField(GraphQLString),
    })
    bulk_input = GraphQLInputObjectType("GeoRegistriesBulkUpdateInput", {
        "registryClass": GraphQLInputField(GraphQLNonNull(registry_class)),
        "action": GraphQLInputField(GraphQLNonNull(GeoRegistriesBulkAction)),
        "ids": GraphQLInputField(GraphQLList(GraphQLNonNull(base_id))),
        "replicationState": GraphQLInputField(ReplicationStateEnum),
        "verificationState": GraphQLInputField(VerificationStateEnum),
        "clientMutationId": GraphQLInputField(GraphQLString),
    })
    bulk_payload = GraphQLObjectType("GeoRegistriesBulkUpdatePayload", {
        # An explicit resolver: the value is a replicator class, which the
        # default resolver would call.
        "registryClass": GraphQLField(registry_class,
                                      resolve=lambda payload, _i: payload["registryClass"]),
        "errors": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString)))),
        "clientMutationId": GraphQLField(GraphQLString),
        "updatedCount": GraphQLField(GraphQLInt, description="Registries scheduled."),
    })
    mutation = GraphQLObjectType("Mutation", {
        "geoRegistriesUpdate": GraphQLField(
            update_payload, args={"input": GraphQLArgument(GraphQLNonNull(update_input))},
            resolve=lambda _root, info, input: _update(info, input, models, registry_types)),
        "geoRegistriesBulkUpdate": GraphQLField(
            bulk_payload, args={"input": GraphQLArgument(GraphQLNonNull(bulk_input))},
            resolve=lambda _root, info, input: _bulk_update(info, input, models)),
    })
    return GraphQLSchema(query=query, mutation=mutation)


def _require_token(info) -> None:
    if not info.context.authorized:
        raise ApiError("This mutation needs the site's API token: "
                       "Authorization: Bearer <api_token>.")


def _registry_engine(info):
    engine = info.context.site.tracking_engine
    if engine is None:
        raise ApiError("This site has no registries (it is not a secondary).")
    return engine


def _update(info, data, models, registry_types):
    from backend.secondary.registry_store import RegistryFilter, RegistryStore
    _require_token(info)
    engine = _registry_engine(info)
    model, registry_id = data["registryId"]
    replicator = models[model]
    store = RegistryStore(engine, replicator)
    selection = RegistryFilter(ids=(registry_id,))
    if data["action"] == "RESYNC":
        changed = store.resync(selection)
    else:
        changed = store.reverify(selection)
    info.context.site.registries_changed()
    page = registry_query.fetch_page(engine, replicator, RegistryQuery(ids=(registry_id,)),
                                     first=1)
    errors = []
    if not page.rows:
        errors.append(f"Registry {registry_id} not found.")
    elif not changed:
        errors.append(f"Registry {registry_id} is not synced; only synced registries "
                      "can be reverified.")
    row = dict(page.rows[0], __typename=registry_types[replicator]) if page.rows else None
    return {"registry": row, "errors": errors, "clientMutationId": data.get("clientMutationId")}


def _bulk_update(info, data, models):
    from backend.secondary.registry_store import RegistryFilter, RegistryStore
    _require_token(info)
    engine = _registry_engine(info)
    replicator = data["registryClass"]
    ids = data.get("ids")
    if ids is not None:
        wrong = [number for model, number in ids if models[model] is not replicator]
        if wrong:
            raise ApiError("ids must all be registries of the registryClass given")
    selection = RegistryFilter(
        replication_state=data.get("replicationState"),
        verification_state=data.get("verificationState"),
        ids=None if ids is None else tuple(number for _m, number in ids))
    store = RegistryStore(engine, replicator)
    if data["action"] == "RESYNC_ALL":
        changed = store.resync(selection)
    else:
        changed = store.reverify(selection)
    info.context.site.registries_changed()
    return {"registryClass": replicator, "errors": [], "updatedCount": changed,
            "clientMutationId": data.get("clientMutationId")}


def _resolve_history(node, info, **kwargs):
    site = info.context.site
    if site.tracking_engine is None or not node.get("current"):
        return None
    start = kwargs["from"]
    end = kwargs.get("to") or dt.datetime.now(dt.timezone.utc)
    names = {r.replicable_name: r for r in site.replicators}
    replicable = kwargs.get("replicable") or next(iter(names))
    if replicable not in names:
        raise ApiError(f"unknown replicable {replicable!r}")
    from backend.secondary import status_history
    return _call(status_history.read, site.tracking_engine, replicable, start, end,
                 kwargs.get("buckets") or 200)
