"""What a site's GraphQL schema offers, learnt by introspection.

Geo Console's own sites and GitLab's differ, and GitLab's differ between
releases: 16.3 has no `count` on registry connections, no `sort`, takes
`ids: [ID!]`, requires `registryClass` on `geoRegistriesUpdate` and has no
bulk mutation; 19.x counts (`count(limit)`), sorts, types `ids` per class
(`[GeoPackageFileRegistryID!]`), has dropped `registryClass` from the single
update and offers `geoRegistriesBulkUpdate`. Geo Console adds `offset`,
`statusHistory`, `registryFailureGroups` and the bulk payload's
`updatedCount`. The client never decides by a version string: it asks the
schema what is there (`discover`) and builds each document from the answer
(`registries_document`), so every document it sends is valid for the site.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backend.framework.replicable_names import gitlab_type, snake
from backend.framework.replicator import ReplicableType
from backend.replicables import registered

# Registry fields the console reads, in the order it shows them; a site's
# node type has some of them (GitLab 16.3 lacks the last four of the first
# line, GitLab has none of Geo Console's own on the third).
WANTED_REGISTRY_FIELDS = (
    "id", "modelRecordId", "missingOnPrimary", "checksumMismatch",
    "verificationChecksumMismatched", "createdAt", "lastSyncedAt", "retryAt", "state",
    "retryCount", "lastSyncFailure", "verificationState", "verifiedAt",
    "verificationStartedAt", "verificationRetryAt", "verificationRetryCount",
    "verificationFailure", "verificationChecksum", "dataManagementDetailsPath",
    "fileName", "size", "fileStore", "projectId", "projectPath", "shard", "primaryChecksum")

TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
FIRST_QUESTION = f"""{{
  geoNode {{ id name primary }}
  node: __type(name: "GeoNode") {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }}
    type {{ {TYPE_REF} }} }} }}
  schema: __schema {{ mutationType {{ fields {{ name }} }} }}
  update: __type(name: "GeoRegistriesUpdateInput") {{ inputFields {{ name
    type {{ {TYPE_REF} }} }} }}
  bulk: __type(name: "GeoRegistriesBulkUpdateInput") {{ inputFields {{ name }} }}
  bulkPayload: __type(name: "GeoRegistriesBulkUpdatePayload") {{ fields {{ name }} }}
  classes: __type(name: "GeoRegistryClass") {{ enumValues {{ name }} }}
}}"""
TYPES_PER_QUESTION = 10  # registry types whose fields one introspection query asks for


class SchemaError(Exception):
    """The site's schema is not one of a Geo site; the message says what is missing."""


@dataclass(frozen=True)
class RegistryField:
    """One `<type>Registries` field of GeoNode and what its types offer."""
    kind: ReplicableType
    field: str                  # packageFileRegistries
    node_type: str              # PackageFileRegistry
    arguments: dict[str, str]   # name -> GraphQL type as written in a document
    node_fields: frozenset[str]
    counts: bool                # the connection has count(limit)
    model_id_field: str         # modelRecordId, or the model's id field (packageFileId)

    @property
    def selection(self) -> list[str]:
        """The node fields to ask for: those wanted that the node type has,
        and the model's id field when there is no modelRecordId."""
        chosen = [name for name in WANTED_REGISTRY_FIELDS if name in self.node_fields]
        if self.model_id_field not in chosen:
            chosen.append(self.model_id_field)
        return chosen


@dataclass
class SiteSchema:
    node: dict | None                       # the site's id and name, or None (not an admin)
    primary: bool
    registry_fields: list[RegistryField]
    node_fields: frozenset[str]            # GeoNode's fields that are not registries
    mutations: frozenset[str]
    update_inputs: dict[str, str]           # GeoRegistriesUpdateInput field -> type
    bulk_inputs: frozenset[str]            # empty: no bulk mutation
    bulk_payload: frozenset[str]
    registry_classes: frozenset[str]
    by_name: dict[str, RegistryField] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {f.kind.replicable_name: f for f in self.registry_fields}

    @property
    def types(self) -> list[ReplicableType]:
        return [f.kind for f in self.registry_fields]

    def registry(self, kind: ReplicableType) -> RegistryField:
        try:
            return self.by_name[kind.replicable_name]
        except KeyError:
            raise SchemaError(f"the site has no {kind.title} registries") from None

    @property
    def has_history(self) -> bool:
        return "statusHistory" in self.node_fields

    @property
    def has_failure_groups(self) -> bool:
        return "registryFailureGroups" in self.node_fields

    @property
    def geo_console(self) -> bool:
        """Geo Console's own extensions are there: a Geo Console site."""
        return self.has_history and self.has_failure_groups

    @property
    def has_bulk_update(self) -> bool:
        return "geoRegistriesBulkUpdate" in self.mutations and bool(self.bulk_inputs)

    def bulk_narrows_by(self, *inputs: str) -> bool:
        return self.has_bulk_update and all(name in self.bulk_inputs for name in inputs)

    def registry_class(self, kind: ReplicableType) -> str:
        """The GeoRegistryClass value of a type: upper snake case of its
        GraphQL name (PackageFile: PACKAGE_FILE_REGISTRY)."""
        value = f"{snake(kind.graphql_name).upper()}_REGISTRY"
        if self.registry_classes and value not in self.registry_classes:
            raise SchemaError(f"the site's GeoRegistryClass has no {value}")
        return value


def discover(execute) -> SiteSchema:
    """Ask a site's schema what it offers; `execute(query, variables)`
    returns GraphQL data or raises the client's error."""
    first = execute(FIRST_QUESTION, {})
    node = first.get("node")
    if not node or not node.get("fields"):
        raise SchemaError("its GraphQL schema has no GeoNode type (it is not a GitLab "
                          "Geo or Geo Console site)")
    connections = []
    node_fields = set()
    for entry in node["fields"]:
        connection = _named(entry["type"])
        if entry["name"].endswith("Registries") and connection \
                and connection.endswith("RegistryConnection"):
            connections.append((entry, connection))
        else:
            node_fields.add(entry["name"])
    details = _type_fields(execute, [c for _, c in connections]
                           + [c.removesuffix("Connection") for _, c in connections])
    fields = []
    for entry, connection in connections:
        node_type = connection.removesuffix("Connection")
        members = details.get(node_type) or {}
        connection_fields = details.get(connection) or {}
        if not members:
            continue  # a connection whose node type the site does not describe
        model_id = "modelRecordId" if "modelRecordId" in members else _model_id_field(
            members, node_type)
        fields.append(RegistryField(
            kind=type_of_field(entry["name"], node_type, model_id),
            field=entry["name"], node_type=node_type,
            arguments={a["name"]: _written(a["type"]) for a in entry["args"]},
            node_fields=frozenset(members), counts="count" in connection_fields,
            model_id_field=model_id))
    mutation_type = (first.get("schema") or {}).get("mutationType") or {}
    return SiteSchema(
        node=first.get("geoNode"),
        primary=bool((first.get("geoNode") or {}).get("primary")),
        registry_fields=fields, node_fields=frozenset(node_fields),
        mutations=frozenset(f["name"] for f in mutation_type.get("fields") or []),
        update_inputs={f["name"]: _written(f["type"])
                       for f in (first.get("update") or {}).get("inputFields") or []},
        bulk_inputs=frozenset(f["name"] for f in (first.get("bulk") or {}).get("inputFields")
                              or []),
        bulk_payload=frozenset(f["name"] for f in (first.get("bulkPayload") or {}).get("fields")
                               or []),
        registry_classes=frozenset(v["name"] for v in (first.get("classes") or {}).get(
            "enumValues") or []))


def _type_fields(execute, names: list[str]) -> dict[str, set[str]]:
    """The field names of each named type, TYPES_PER_QUESTION types a query."""
    found: dict[str, set[str]] = {}
    for start in range(0, len(names), TYPES_PER_QUESTION):
        chunk = names[start:start + TYPES_PER_QUESTION]
        query = "{ " + " ".join(
            f't{i}: __type(name: "{name}") {{ fields {{ name }} }}'
            for i, name in enumerate(chunk)) + " }"
        data = execute(query, {})
        for i, name in enumerate(chunk):
            described = data.get(f"t{i}") or {}
            found[name] = {f["name"] for f in described.get("fields") or []}
    return found


def registries_document(field: RegistryField, *, count: bool) -> tuple[str, list[str]]:
    """A registries query valid for the site, and the variables it declares
    (each a registry field argument the site has)."""
    wanted = ["first", "last", "before", "after", "ids", "replicationState",
              "verificationState", "keyword", "sort", "offset", "syncFailure",
              "verificationFailure"]
    present = [name for name in wanted if name in field.arguments]
    declared = ", ".join(f"${name}: {field.arguments[name]}" for name in present)
    passed = ", ".join(f"{name}: ${name}" for name in present)
    counting = ""
    if count and field.counts:
        counting = "count(limit: $countLimit)"
        declared += ", $countLimit: Int"
    query = (f"query({declared}) {{ geoNode {{ {field.field}({passed}) {{ {counting} "
             "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
             f"nodes {{ {' '.join(field.selection)} }} }} }} }}")
    return query, present


def type_of_field(field: str, node_type: str, model_id_field: str = "modelRecordId"
                  ) -> ReplicableType:
    """The type behind GeoNode's `<type>Registries` field of node type
    `<Type>Registry`: as this console declares it when it knows it, else
    named as GitLab names it (`replicable_names.gitlab_type`)."""
    graphql_name = node_type.removesuffix("Registry")
    known = {r.graphql_name: r for r in registered()}
    if graphql_name in known:
        return known[graphql_name].describe()
    fk = f"{snake(graphql_name)}_id" if model_id_field == "modelRecordId" \
        else snake(model_id_field)
    return gitlab_type(graphql_name, fk)


def _model_id_field(members: set[str], node_type: str) -> str:
    """The `…Id` field naming the model of a node type without
    modelRecordId: GitLab's `packageFileId`, `fileId` (uploads), `artifactId`
    (job artifacts), `projectId` (project repositories)."""
    own = node_type.removesuffix("Registry")
    expected = own[0].lower() + own[1:] + "Id"
    if expected in members:
        return expected
    candidates = sorted(name for name in members if name.endswith("Id") and name != "id")
    if len(candidates) == 1:
        return candidates[0]
    raise SchemaError(f"{node_type} names its model neither by modelRecordId nor by "
                      "one …Id field")


def _named(type_ref: dict | None) -> str | None:
    """The named type under any NON_NULL and LIST wrappers."""
    while type_ref is not None and type_ref.get("name") is None:
        type_ref = type_ref.get("ofType")
    return type_ref.get("name") if type_ref else None


def _written(type_ref: dict) -> str:
    """A type reference as a document writes it: `[GeoUploadRegistryID!]`."""
    kind = type_ref["kind"]
    if kind == "NON_NULL":
        return _written(type_ref["ofType"]) + "!"
    if kind == "LIST":
        return f"[{_written(type_ref['ofType'])}]"
    return type_ref["name"]
