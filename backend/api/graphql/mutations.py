"""The mutations, with GitLab's shapes: `geoRegistriesUpdate` (RESYNC or
REVERIFY one registry) and `geoRegistriesBulkUpdate` (RESYNC_ALL or
REVERIFY_ALL of a class, narrowed by ids and states). Both need the
site's API token."""
from __future__ import annotations

from graphql import (GraphQLArgument, GraphQLField, GraphQLInputField, GraphQLInputObjectType,
                     GraphQLInt, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLString,
                     GraphQLUnionType)

from backend.api.graphql.types import (ApiError, GeoRegistriesBulkAction, GeoRegistryAction,
                                       ReplicationStateEnum, VerificationStateEnum)
from backend.secondary import registry_query
from backend.secondary.bulk_actions import BulkActionRefused, one_batch
from backend.secondary.registry_actions import RegistryActions
from backend.secondary.registry_selection import RegistrySelection

_ACTIONS = {"RESYNC": "resync", "REVERIFY": "reverify",
            "RESYNC_ALL": "resync", "REVERIFY_ALL": "reverify"}


def mutation_type(models: dict, registry_types: dict, registry_class, base_id):
    """`models`: registry model name (Geo::CoolWidgetRegistry) -> replicator;
    `registry_types`: replicator -> its GraphQL registry type."""
    by_name = {replicator.replicable_name: graphql_type.name
               for replicator, graphql_type in registry_types.items()}
    registrable = GraphQLUnionType(
        "Registrable", list(registry_types.values()),
        resolve_type=lambda row, _info, _type: by_name[row.replicable])
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
        "updatedCount": GraphQLField(GraphQLInt, description=(
            "Geo Console extension: registries changed, or, for a job still running "
            "after 5 s, registries it picked; it goes on in the background, 1,000 a "
            "transaction, listed with its progress in the site's REST status "
            "(bulk_actions).")),
    })
    return GraphQLObjectType("Mutation", {
        "geoRegistriesUpdate": GraphQLField(
            update_payload, args={"input": GraphQLArgument(GraphQLNonNull(update_input))},
            resolve=lambda _root, info, input: update(info, input, models)),
        "geoRegistriesBulkUpdate": GraphQLField(
            bulk_payload, args={"input": GraphQLArgument(GraphQLNonNull(bulk_input))},
            resolve=lambda _root, info, input: bulk_update(info, input, models)),
    })


BULK_WAIT = 5.0  # seconds a bulk mutation waits for its job before answering


def _registry_engine(info):
    if info.context.token == "read":
        raise ApiError("This token only reads (it is the site's read_token): mutations "
                       "need its api_token.")
    if info.context.token == "wrong":
        raise ApiError("The API token was refused: it is not this site's api_token.")
    if not info.context.authorized:
        raise ApiError("This mutation needs the site's API token: "
                       "Authorization: Bearer <api_token>.")
    engine = info.context.site.tracking_engine
    if engine is None:
        raise ApiError("This site has no registries (it is not a secondary).")
    return engine


def update(info, data, models):
    engine = _registry_engine(info)
    model, registry_id = data["registryId"]
    replicator = models[model]
    selection = RegistrySelection(ids=(registry_id,))
    changed = RegistryActions(engine, replicator).act(_ACTIONS[data["action"]], selection)
    info.context.site.registries_changed()
    page = registry_query.fetch_page(engine, replicator, selection, first=1)
    errors = []
    if not page.rows:
        errors.append(f"Registry {registry_id} not found.")
    elif not changed:
        errors.append(f"Registry {registry_id} is not synced; only synced registries "
                      "can be reverified.")
    return {"registry": page.rows[0] if page.rows else None, "errors": errors,
            "clientMutationId": data.get("clientMutationId")}


def bulk_update(info, data, models):
    engine = _registry_engine(info)
    replicator = data["registryClass"]
    ids = data.get("ids")
    if ids is not None:
        if any(models[model] is not replicator for model, _number in ids):
            raise ApiError("ids must all be registries of the registryClass given")
        ids = tuple(number for _model, number in ids)
    selection = RegistrySelection(ids=ids, replication_state=data.get("replicationState"),
                                  verification_state=data.get("verificationState"))
    answer = {"registryClass": replicator, "errors": [], "updatedCount": 0,
              "clientMutationId": data.get("clientMutationId")}
    if one_batch(selection):  # one transaction: no job, answered at once
        answer["updatedCount"] = RegistryActions(engine, replicator).act(
            _ACTIONS[data["action"]], selection)
        info.context.site.registries_changed()
        return answer
    # As GitLab schedules a worker: the job runs in batches in the
    # background, listed with its progress in the site's status.
    try:
        job = info.context.site.bulk_jobs.start(replicator, _ACTIONS[data["action"]],
                                                selection)
    except BulkActionRefused as exc:
        answer["errors"] = [str(exc)[:1].upper() + str(exc)[1:] + "."]
        return answer
    # A job that ends within BULK_WAIT answers how many it changed; a
    # longer one how many it picked, and goes on.
    if job.ended.wait(BULK_WAIT) and job.state == "finished":
        answer["updatedCount"] = job.changed
    else:
        answer["updatedCount"] = job.total or 0
    if job.state == "failed":
        answer["errors"] = [job.error]
    return answer
