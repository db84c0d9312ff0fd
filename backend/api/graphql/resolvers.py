"""Reading resolvers: registries of a type, failure groups, status history.

Registries live in the tracking DB of the site queried: a site answers
only for itself (`current`), and a primary has none.
"""
from __future__ import annotations

import datetime as dt

from graphql import GraphQLArgument, GraphQLField, GraphQLInt, GraphQLList, GraphQLNonNull
from graphql import GraphQLString

from backend.api.graphql.limits import MAX_PAGE_SIZE
from backend.api.graphql.types import (ApiError, ConnectionSource, GeoRegistrySort,
                                       ReplicationStateEnum, VerificationStateEnum)
from backend.secondary import registry_query, status_history
from backend.secondary.registry_query import QueryError
from backend.secondary.registry_selection import RegistrySelection


def call(function, *args, **kwargs):
    """`function(...)`, its bad-argument errors as GraphQL errors."""
    try:
        return function(*args, **kwargs)
    except (QueryError, ValueError) as exc:
        raise ApiError(str(exc)) from None


def registries_field(replicator, connection, id_scalar) -> GraphQLField:
    """GeoNode's `<types>Registries(first, last, before, after, ids,
    replicationState, verificationState, keyword, sort, offset)`."""
    def resolve(node, info, first=None, last=None, before=None, after=None, ids=None,
                replicationState=None, verificationState=None, keyword=None, sort="ID_ASC",
                offset=None, syncFailure=None, verificationFailure=None):
        engine = info.context.site.tracking_engine
        if engine is None or not node.get("current"):
            return None
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise ApiError(f"{name} must be between 0 and {MAX_PAGE_SIZE}")
        selection = call(
            RegistrySelection,
            ids=None if ids is None else tuple(number for _model, number in ids),
            replication_state=replicationState, verification_state=verificationState,
            keyword=keyword, sync_failure=syncFailure, verification_failure=verificationFailure)
        page = call(registry_query.fetch_page, engine, replicator, selection,
                    sort or registry_query.DEFAULT_SORT, first=first, last=last,
                    before=before or None, after=after or None, offset=offset,
                    max_page_size=MAX_PAGE_SIZE)
        return ConnectionSource(page, lambda limit: call(
            registry_query.capped_count, engine, replicator, selection, limit))

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
        "syncFailure": GraphQLArgument(GraphQLString, description=(
            "Geo Console extension: failed syncs with exactly this message "
            "(a group of registryFailureGroups; \"\" for none).")),
        "verificationFailure": GraphQLArgument(GraphQLString, description=(
            "Geo Console extension: failed verifications with exactly this message.")),
    }, resolve=resolve, description=f"{replicator.title} registries of this site.")


def _replicator_named(site, replicable: str | None):
    """The site's type named `replicable`, or its first type."""
    names = {r.replicable_name: r for r in site.replicators}
    replicable = replicable or next(iter(names))
    if replicable not in names:
        raise ApiError(f"unknown replicable {replicable!r}; known: {', '.join(names)}")
    return names[replicable]


def failure_groups(node, info, replicable=None, limit=50):
    site = info.context.site
    if site.tracking_engine is None or not node.get("current"):
        return None
    replicator = _replicator_named(site, replicable)
    limit = 50 if limit is None else limit  # an explicit null means the default
    if not 1 <= limit <= 1000:
        raise ApiError("limit must be between 1 and 1000")
    return registry_query.failure_groups(site.tracking_engine, replicator, limit)


def status_history_points(node, info, **kwargs):
    site = info.context.site
    if site.tracking_engine is None or not node.get("current"):
        return None
    start = kwargs["from"]
    end = kwargs.get("to") or dt.datetime.now(dt.timezone.utc)
    replicator = _replicator_named(site, kwargs.get("replicable"))
    return call(status_history.read, site.tracking_engine, replicator.replicable_name, start,
                end, kwargs.get("buckets") or 200)
