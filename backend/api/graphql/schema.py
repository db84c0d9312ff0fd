"""The GraphQL schema, generated from the replicator registry.

Each registered type gets `<Type>Registry`, its connection and edge types, a
`Geo<Type>RegistryID` scalar, a `<types>Registries` field on GeoNode and a
`GeoRegistryClass` value; nothing here names a type. The types live in
`types.py`, reading resolvers in `resolvers.py`, mutations in
`mutations.py`.
"""
from __future__ import annotations

from graphql import (GraphQLArgument, GraphQLBoolean, GraphQLField, GraphQLID, GraphQLInt,
                     GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema,
                     GraphQLString)

from backend.api.graphql import global_ids, resolvers
from backend.api.graphql.mutations import mutation_type
from backend.api.graphql.types import (FailureGroup, HistoryPoint, Time, camel, connection_type,
                                       gid_scalar, registry_class_enum, registry_id_scalar,
                                       registry_type)

# Fields of GitLab's GeoNode that a Geo Console site answers from geo_node().
NODE_FIELDS = {
    "id": GraphQLNonNull(GraphQLID), "name": GraphQLString, "url": GraphQLString,
    "internalUrl": GraphQLString, "primary": GraphQLBoolean, "enabled": GraphQLBoolean,
    "filesMaxCapacity": GraphQLInt, "reposMaxCapacity": GraphQLInt,
    "verificationMaxCapacity": GraphQLInt, "containerRepositoriesMaxCapacity": GraphQLInt,
    "syncObjectStorage": GraphQLBoolean, "selectiveSyncType": GraphQLString,
    "selectiveSyncShards": GraphQLList(GraphQLNonNull(GraphQLString)),
    "minimumReverificationInterval": GraphQLInt,
}


def build_schema(replicators) -> GraphQLSchema:
    registry_types = {r: registry_type(r) for r in replicators}
    models = {global_ids.registry_model(r): r for r in replicators}
    base_id = gid_scalar("GeoBaseRegistryID", "A global id of any Geo registry.", set(models))
    node_fields = {name: GraphQLField(kind) for name, kind in NODE_FIELDS.items()}
    node_fields.update({
        "statusHistory": GraphQLField(
            GraphQLList(HistoryPoint),
            args={"replicable": GraphQLArgument(GraphQLString),
                  "from": GraphQLArgument(GraphQLNonNull(Time)),
                  "to": GraphQLArgument(Time),
                  "buckets": GraphQLArgument(GraphQLInt, default_value=200)},
            resolve=resolvers.status_history_points,
            description="Geo Console extension: status snapshots of this site over "
                        "[from, to], bucketed."),
        "registryFailureGroups": GraphQLField(
            GraphQLList(FailureGroup),
            args={"replicable": GraphQLArgument(GraphQLString),
                  "limit": GraphQLArgument(GraphQLInt, default_value=50)},
            resolve=resolvers.failure_groups,
            description="Geo Console extension: failures grouped by message, newest first."),
    })
    for replicator, node_type in registry_types.items():
        node_fields[camel(replicator.replicable_name) + "Registries"] = \
            resolvers.registries_field(replicator, connection_type(replicator, node_type),
                                       registry_id_scalar(replicator))
    geo_node = GraphQLObjectType("GeoNode", node_fields, description="A Geo site.")
    query = GraphQLObjectType("Query", {
        "geoNode": GraphQLField(geo_node, args={"name": GraphQLArgument(GraphQLString)},
                                resolve=lambda _root, info, name=None:
                                info.context.site.geo_node(name)),
    })
    mutation = mutation_type(models, registry_types, registry_class_enum(replicators), base_id)
    return GraphQLSchema(query=query, mutation=mutation)
