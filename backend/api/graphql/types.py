"""The GraphQL types, with GitLab's names: scalars, enums, and per
replicable type its `<Type>Registry`, connection and edge types.

Registry fields resolve from `RegistryRow`s (secondary/registry_row.py).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from graphql import (GraphQLArgument, GraphQLBoolean, GraphQLEnumType, GraphQLEnumValue,
                     GraphQLError, GraphQLField, GraphQLFloat, GraphQLID, GraphQLInt,
                     GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType,
                     GraphQLString, StringValueNode)

from backend.api.graphql import global_ids
from backend.framework.states import SyncState, VerificationState
from backend.secondary import registry_query


class ApiError(GraphQLError):
    """An error for the client; never carries internals."""


@dataclass
class RequestContext:
    site: object
    token: str = "none"  # "yes", "read", "wrong" or "none": what the request's token is

    @property
    def authorized(self) -> bool:
        return self.token == "yes"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


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


BigInt = GraphQLScalarType(
    "BigInt", description="An integer of up to 64 bits (a file size, an id).",
    serialize=int, parse_value=int,
    parse_literal=lambda node, _vars=None: int(node.value))


def gid_scalar(name: str, description: str, accepted_models: set[str]):
    """A global id scalar accepting ids of the given models only."""
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


def registry_id_scalar(replicator):
    model = global_ids.registry_model(replicator)
    return gid_scalar(f"Geo{replicator.graphql_name}RegistryID",
                      f"A global id of a {replicator.title} registry, gid://gitlab/{model}/<id>.",
                      {model})


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


def registry_class_enum(replicators) -> GraphQLEnumType:
    return GraphQLEnumType("GeoRegistryClass", {
        f"{replicator.replicable_name.upper()}_REGISTRY": GraphQLEnumValue(replicator)
        for replicator in replicators})


PageInfo = GraphQLObjectType("PageInfo", lambda: {
    "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "hasPreviousPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "startCursor": GraphQLField(GraphQLString),
    "endCursor": GraphQLField(GraphQLString),
})


# --- registries ----------------------------------------------------------------

def _attribute(name: str, kind):
    return GraphQLField(kind, resolve=lambda row, _info: getattr(row, name))


def registry_type(replicator) -> GraphQLObjectType:
    """`<Type>Registry`: every shared registry field of GitLab's, plus
    `<type>Id` (the model id under the type's own name)."""
    fields = {
        "id": GraphQLField(GraphQLNonNull(GraphQLID), resolve=lambda row, _i: global_ids
                           .registry_gid(replicator, row.registry_id)),
        camel(replicator.registry_fk): GraphQLField(
            GraphQLNonNull(GraphQLID), resolve=lambda row, _i: row.model_id),
        "modelRecordId": _attribute("model_id", GraphQLInt),
        "createdAt": _attribute("created_at", Time),
        "lastSyncedAt": _attribute("last_synced_at", Time),
        "retryAt": _attribute("retry_at", Time),
        "state": _attribute("state", RegistryState),
        "retryCount": _attribute("retry_count", GraphQLInt),
        "lastSyncFailure": _attribute("last_sync_failure", GraphQLString),
        "missingOnPrimary": _attribute("missing_on_primary", GraphQLBoolean),
        "verificationState": _attribute("verification_state", VerificationStateEnum),
        "verifiedAt": _attribute("verified_at", Time),
        "verificationStartedAt": _attribute("verification_started_at", Time),
        "verificationRetryAt": _attribute("verification_retry_at", Time),
        "verificationRetryCount": _attribute("verification_retry_count", GraphQLInt),
        "verificationFailure": _attribute("verification_failure", GraphQLString),
        "verificationChecksum": _attribute("verification_checksum", GraphQLString),
        "verificationChecksumMismatched": _attribute("verification_checksum_mismatched",
                                                     GraphQLString),
        "checksumMismatch": _attribute("checksum_mismatch", GraphQLBoolean),
        # What the record is, as the primary describes it: Geo Console
        # extensions (GitLab shows it on the record's own pages).
        "fileName": _attribute("file_name", GraphQLString),
        "size": _attribute("size", BigInt),
        "fileStore": _attribute("file_store", GraphQLInt),
        "projectId": _attribute("project_id", BigInt),
        "projectPath": _attribute("project_path", GraphQLString),
        "shard": _attribute("shard", GraphQLString),
        "primaryChecksum": _attribute("primary_checksum", GraphQLString),
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


def connection_type(replicator, node_type) -> GraphQLObjectType:
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


# --- Geo Console extensions ------------------------------------------------------

def _key(name: str, kind):
    return GraphQLField(kind, resolve=lambda row, _info: row[name])


FailureGroup = GraphQLObjectType("GeoRegistryFailureGroup", {
    "kind": GraphQLField(GraphQLString, description="SYNC or VERIFICATION.",
                         resolve=lambda group, _i: group["kind"].upper()),
    "message": _key("message", GraphQLString),
    "count": _key("count", GraphQLInt),
    "lastSeenAt": _key("last_seen_at", Time),
}, description="Failed registries sharing one failure message.")

HistoryPoint = GraphQLObjectType("GeoStatusHistoryPoint", {
    camel(name): _key(name, kind) for name, kind in (
        ("time", Time), ("registry_count", GraphQLInt), ("synced_count", GraphQLInt),
        ("failed_count", GraphQLInt), ("verification_total_count", GraphQLInt),
        ("verified_count", GraphQLInt), ("verification_failed_count", GraphQLInt),
        ("synced_percentage", GraphQLFloat), ("verified_percentage", GraphQLFloat),
        ("syncs_succeeded_per_minute", GraphQLFloat), ("syncs_failed_per_minute", GraphQLFloat),
        ("verifications_succeeded_per_minute", GraphQLFloat),
        ("verifications_failed_per_minute", GraphQLFloat),
        ("bytes_per_second", GraphQLFloat))
}, description="Status over time: per bucket the newest counts and the work done as rates.")
