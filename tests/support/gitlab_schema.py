"""The Geo part of GitLab's GraphQL schema, for two GitLab generations.

The SDL is generated here from tables of facts (type names, field names,
argument lists, nullability) read from GitLab's published schema:

  "16.3"  GitLab 16.3 (August 2023): registry filters without `sort`,
          connections without `count`, `registryClass` required by
          `geoRegistriesUpdate`, no bulk mutation.
  "19.2"  GitLab.com around 19.2: 40 registry fields, per-class global ID
          scalars for `ids`, `sort`, `count(limit)`, the bulk mutation and
          an update input without `registryClass`.

No descriptions and no GitLab text are kept: only the facts a GraphQL
validator needs, so that a document our client sends is accepted or refused
as GitLab would accept or refuse it. `compare_with_published` checks those
facts against a published SDL file (the fidelity test runs it when one is
at hand).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

GENERATIONS = ("16.3", "19.2")

# Messages a GitLab site gives (also used by the stand-in server).
RESOURCE_ACCESS_ERROR = ("The resource that you are attempting to access does not exist "
                         "or you don't have permission to perform this action")


def _version(generation: str) -> tuple[int, ...]:
    """"16.3" -> (16, 3), to compare generations."""
    return tuple(int(part) for part in generation.split("."))


def _check(generation: str) -> str:
    if generation not in GENERATIONS:
        raise ValueError(f"unknown GitLab generation {generation!r}; known: {GENERATIONS}")
    return generation


def _lower_first(name: str) -> str:
    return name[0].lower() + name[1:]


def _snake(name: str) -> str:
    """"PackageFile" -> "package_file"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plural(snake: str) -> str:
    """GitLab's plural of a replicable name: "lfs_object" -> "lfs_objects",
    "container_repository" -> "container_repositories"."""
    if snake.endswith("y"):
        return snake[:-1] + "ies"
    if snake.endswith(("s", "x", "ch", "sh")):
        return snake + "es"
    return snake + "s"


@dataclass(frozen=True)
class RegistryKind:
    """One kind of Geo registry (the registry of one replicable type)."""

    name: str                  # "PackageFile": the GraphQL type is "PackageFileRegistry"
    since: str                 # first generation here that has it
    model_id_override: str | None = None   # the few whose model id field is not <name>Id
    on_geo_node: bool = True   # False: a GeoRegistryClass value without a GeoNode field

    @property
    def type_name(self) -> str:
        return f"{self.name}Registry"

    @property
    def field_name(self) -> str:
        """The GeoNode field: "packageFileRegistries"."""
        return f"{_lower_first(self.name)}Registries"

    @property
    def model_id_field(self) -> str:
        """The registry's ID of the replicated record: "packageFileId"."""
        return self.model_id_override or f"{_lower_first(self.name)}Id"

    @property
    def class_value(self) -> str:
        """Its GeoRegistryClass value: "PACKAGE_FILE_REGISTRY"."""
        return f"{_snake(self.name).upper()}_REGISTRY"

    @property
    def gid_class(self) -> str:
        """The Ruby class in its global IDs: "Geo::PackageFileRegistry"."""
        return f"Geo::{self.type_name}"

    @property
    def id_scalar(self) -> str:
        """Its global ID scalar (19.2's `ids`): "GeoPackageFileRegistryID"."""
        return f"Geo{self.type_name}ID"

    @property
    def plural(self) -> str:
        """Its plural snake name in the REST status: "package_files"."""
        return _plural(_snake(self.name))

    def gid(self, registry_id: int) -> str:
        return f"gid://gitlab/{self.gid_class}/{registry_id}"


# Every registry kind of both generations, in GitLab's (alphabetical) order.
KINDS: tuple[RegistryKind, ...] = (
    RegistryKind("AbuseReportUpload", "19.2"),
    RegistryKind("AchievementUpload", "19.2"),
    RegistryKind("AiVectorizableFileUpload", "19.2"),
    RegistryKind("AlertManagementMetricImageUpload", "19.2"),
    RegistryKind("BulkImportExportUploadUpload", "19.2"),
    RegistryKind("CiSecureFile", "16.3"),
    RegistryKind("ContainerRepository", "16.3"),
    RegistryKind("DependencyListExportPartUpload", "19.2"),
    RegistryKind("DependencyListExportUpload", "19.2"),
    RegistryKind("DependencyProxyBlob", "16.3"),
    RegistryKind("DependencyProxyManifest", "16.3"),
    RegistryKind("DesignManagementActionUpload", "19.2"),
    RegistryKind("DesignManagementRepository", "16.3"),
    RegistryKind("GroupUpload", "19.2"),
    RegistryKind("GroupWikiRepository", "16.3"),
    RegistryKind("ImportExportUploadUpload", "19.2"),
    RegistryKind("IssuableMetricImageUpload", "19.2"),
    RegistryKind("JobArtifact", "16.3", model_id_override="artifactId"),
    RegistryKind("LfsObject", "16.3"),
    RegistryKind("MergeRequestDiff", "16.3"),
    RegistryKind("OrganizationDetailUpload", "19.2"),
    RegistryKind("PackageFile", "16.3"),
    RegistryKind("PackagesDebianProjectComponentFile", "19.2"),
    RegistryKind("PackagesHelmMetadataCache", "19.2"),
    RegistryKind("PackagesNugetSymbol", "19.2"),
    RegistryKind("PagesDeployment", "16.3"),
    RegistryKind("PersonalSnippetUpload", "19.2"),
    RegistryKind("PipelineArtifact", "16.3"),
    RegistryKind("ProjectImportExportRelationExportUploadUpload", "19.2"),
    RegistryKind("ProjectRepository", "16.3", model_id_override="projectId"),
    RegistryKind("ProjectUpload", "19.2"),
    RegistryKind("ProjectWikiRepository", "16.3"),
    RegistryKind("SnippetRepository", "16.3"),
    RegistryKind("SupplyChainAttestation", "19.2", on_geo_node=False),
    RegistryKind("TerraformStateVersion", "16.3"),
    RegistryKind("Upload", "16.3", model_id_override="fileId"),
    RegistryKind("UserPermissionExportUploadUpload", "19.2"),
    RegistryKind("UserUpload", "19.2"),
    RegistryKind("VulnerabilityArchiveExportUpload", "19.2"),
    RegistryKind("VulnerabilityExportPartUpload", "19.2"),
    RegistryKind("VulnerabilityExportUpload", "19.2"),
)


@dataclass(frozen=True)
class Arg:
    name: str
    type: str
    default: str | None = None     # an SDL literal
    deprecated: bool = False


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    args: tuple[Arg, ...] = ()
    deprecated: bool = False


# GeoNode's own fields (both generations; `selectiveSyncNamespaces` is left
# out: it needs GitLab's whole Namespace type).
GEO_NODE_SCALARS: tuple[Field, ...] = (
    Field("containerRepositoriesMaxCapacity", "Int"),
    Field("enabled", "Boolean"),
    Field("filesMaxCapacity", "Int"),
    Field("id", "ID!"),
    Field("internalUrl", "String"),
    Field("minimumReverificationInterval", "Int"),
    Field("name", "String"),
    Field("primary", "Boolean"),
    Field("reposMaxCapacity", "Int"),
    Field("selectiveSyncShards", "[String!]"),
    Field("selectiveSyncType", "String"),
    Field("syncObjectStorage", "Boolean"),
    Field("url", "String"),
    Field("verificationMaxCapacity", "Int"),
)

# The fields of every registry type (besides its model id field), per generation.
REGISTRY_FIELDS_16_3: tuple[Field, ...] = (
    Field("createdAt", "Time"),
    Field("id", "ID!"),
    Field("lastSyncFailure", "String"),
    Field("lastSyncedAt", "Time"),
    Field("retryAt", "Time"),
    Field("retryCount", "Int"),
    Field("state", "RegistryState"),
    Field("verificationChecksum", "String"),
    Field("verificationFailure", "String"),
    Field("verificationRetryAt", "Time"),
    Field("verificationRetryCount", "Int"),
    Field("verificationStartedAt", "Time"),
    Field("verificationState", "VerificationStateEnum"),
    Field("verifiedAt", "Time"),
)
REGISTRY_FIELDS_ADDED_19_2: tuple[Field, ...] = (
    Field("checksumMismatch", "Boolean"),
    Field("dataManagementDetailsPath", "String"),
    Field("forceToRedownload", "Boolean", deprecated=True),
    Field("missingOnPrimary", "Boolean"),
    Field("modelRecordId", "Int"),
    Field("verificationChecksumMismatched", "String"),
)

ENUMS: dict[str, tuple[str, ...]] = {
    "RegistryState": ("PENDING", "STARTED", "SYNCED", "FAILED"),
    "ReplicationStateEnum": ("PENDING", "STARTED", "SYNCED", "FAILED"),
    "VerificationStateEnum": ("PENDING", "STARTED", "SUCCEEDED", "FAILED", "DISABLED"),
    "GeoRegistryAction": ("REVERIFY", "RESYNC"),
}
ENUMS_ADDED_19_2: dict[str, tuple[str, ...]] = {
    "GeoRegistrySort": ("ID_ASC", "ID_DESC", "VERIFIED_AT_ASC", "VERIFIED_AT_DESC",
                        "LAST_SYNCED_AT_ASC", "LAST_SYNCED_AT_DESC"),
    "GeoRegistriesBulkAction": ("REVERIFY_ALL", "RESYNC_ALL"),
}

PAGE_INFO: tuple[Field, ...] = (
    Field("endCursor", "String"),
    Field("hasNextPage", "Boolean!"),
    Field("hasPreviousPage", "Boolean!"),
    Field("startCursor", "String"),
)

UPDATE_PAYLOAD: tuple[Field, ...] = (
    Field("clientMutationId", "String"),
    Field("errors", "[String!]!"),
    Field("registry", "Registrable"),
)
BULK_UPDATE_INPUT: tuple[Field, ...] = (
    Field("clientMutationId", "String"),
    Field("registryClass", "GeoRegistryClass!"),
    Field("action", "GeoRegistriesBulkAction!"),
    Field("ids", "[GeoBaseRegistryID!]"),
    Field("replicationState", "ReplicationStateEnum"),
    Field("verificationState", "VerificationStateEnum"),
)
BULK_UPDATE_PAYLOAD: tuple[Field, ...] = (
    Field("clientMutationId", "String"),
    Field("errors", "[String!]!"),
    Field("registryClass", "GeoRegistryClass"),
)


@dataclass(frozen=True)
class GenerationFacts:
    """What differs between the two generations."""

    generation: str
    typed_registry_ids: bool       # `ids: [Geo<X>RegistryID!]` rather than `[ID!]`
    sort: bool                     # registry fields take `sort: GeoRegistrySort`
    count: bool                    # connections have `count(limit: Int = 1000): Int!`
    keyword_deprecated: bool
    update_input: tuple[Field, ...]
    bulk_mutation: bool
    union_excludes: frozenset[str] = field(default_factory=frozenset)


FACTS: dict[str, GenerationFacts] = {
    "16.3": GenerationFacts(
        generation="16.3", typed_registry_ids=False, sort=False, count=False,
        keyword_deprecated=False,
        update_input=(Field("action", "GeoRegistryAction!"),
                      Field("clientMutationId", "String"),
                      Field("registryClass", "GeoRegistryClass!"),
                      Field("registryId", "GeoBaseRegistryID!")),
        bulk_mutation=False,
        union_excludes=frozenset({"ProjectRepository"})),
    "19.2": GenerationFacts(
        generation="19.2", typed_registry_ids=True, sort=True, count=True,
        keyword_deprecated=True,
        update_input=(Field("clientMutationId", "String"),
                      Field("registryId", "GeoBaseRegistryID!"),
                      Field("action", "GeoRegistryAction!")),
        bulk_mutation=True),
}


def all_kinds(generation: str) -> tuple[RegistryKind, ...]:
    """Every registry kind of a generation, with or without a GeoNode field
    (the values of its GeoRegistryClass enum)."""
    version = _version(_check(generation))
    return tuple(kind for kind in KINDS if _version(kind.since) <= version)


def registry_kinds(generation: str) -> tuple[RegistryKind, ...]:
    """The registry kinds a generation's GeoNode has a field for."""
    return tuple(kind for kind in all_kinds(generation) if kind.on_geo_node)


def kind_named(generation: str, name: str) -> RegistryKind:
    """The kind called `name` ("PackageFile"; "PackageFileRegistry" and
    "PACKAGE_FILE_REGISTRY" are accepted too)."""
    for kind in all_kinds(generation):
        if name in (kind.name, kind.type_name, kind.class_value):
            return kind
    known = ", ".join(kind.name for kind in registry_kinds(generation))
    raise ValueError(f"GitLab {generation} has no registry type {name!r}; known: {known}")


def registry_fields(generation: str, kind: RegistryKind) -> tuple[Field, ...]:
    """The fields of one registry type, sorted by name as GitLab prints them."""
    fields = REGISTRY_FIELDS_16_3 + (Field(kind.model_id_field, "ID!"),)
    if FACTS[_check(generation)].count:  # the 19.2 generation
        fields += REGISTRY_FIELDS_ADDED_19_2
    return tuple(sorted(fields, key=lambda f: f.name))


def registry_field_args(generation: str, kind: RegistryKind) -> tuple[Arg, ...]:
    """The arguments of a GeoNode registry field, in GitLab's order."""
    facts = FACTS[_check(generation)]
    ids = Arg("ids", f"[{kind.id_scalar}!]" if facts.typed_registry_ids else "[ID!]")
    keyword = Arg("keyword", "String", deprecated=facts.keyword_deprecated)
    states = (Arg("replicationState", "ReplicationStateEnum"),
              Arg("verificationState", "VerificationStateEnum"))
    paging = (Arg("after", "String"), Arg("before", "String"),
              Arg("first", "Int"), Arg("last", "Int"))
    if not facts.sort:  # 16.3 prints the arguments alphabetically
        return tuple(sorted((ids, keyword) + states + paging, key=lambda a: a.name))
    return (ids,) + states + (keyword, Arg("sort", "GeoRegistrySort")) + paging


# ---------------------------------------------------------------- SDL printing

def _render_args(args: tuple[Arg, ...]) -> str:
    if not args:
        return ""
    parts = []
    for arg in args:
        text = f"{arg.name}: {arg.type}"
        if arg.default is not None:
            text += f" = {arg.default}"
        if arg.deprecated:
            text += " @deprecated"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def _render_fields(fields: tuple[Field, ...]) -> str:
    lines = []
    for item in fields:
        suffix = " @deprecated" if item.deprecated else ""
        lines.append(f"  {item.name}{_render_args(item.args)}: {item.type}{suffix}")
    return "\n".join(lines)


def _object(name: str, fields: tuple[Field, ...], keyword: str = "type") -> str:
    return f"{keyword} {name} {{\n{_render_fields(fields)}\n}}"


def _enum(name: str, values: tuple[str, ...]) -> str:
    return f"enum {name} {{\n" + "\n".join(f"  {value}" for value in values) + "\n}"


def _registry_types(generation: str, kind: RegistryKind) -> list[str]:
    """A registry's node, connection and edge types."""
    name = kind.type_name
    connection: tuple[Field, ...] = (
        Field("edges", f"[{name}Edge]"),
        Field("nodes", f"[{name}]"),
        Field("pageInfo", "PageInfo!"),
    )
    if FACTS[generation].count:
        connection = (Field("count", "Int!", (Arg("limit", "Int", default="1000"),)),) \
            + connection
    return [
        _object(name, registry_fields(generation, kind)),
        _object(f"{name}Connection", connection),
        _object(f"{name}Edge", (Field("cursor", "String!"), Field("node", name))),
    ]


def _geo_node(generation: str) -> str:
    fields = list(GEO_NODE_SCALARS)
    for kind in registry_kinds(generation):
        fields.append(Field(kind.field_name, f"{kind.type_name}Connection",
                            registry_field_args(generation, kind)))
    return _object("GeoNode", tuple(sorted(fields, key=lambda f: f.name)))


def _roots(generation: str) -> list[str]:
    facts = FACTS[generation]
    mutations = [Field("geoRegistriesUpdate", "GeoRegistriesUpdatePayload",
                       (Arg("input", "GeoRegistriesUpdateInput!"),))]
    if facts.bulk_mutation:
        mutations.insert(0, Field("geoRegistriesBulkUpdate", "GeoRegistriesBulkUpdatePayload",
                                  (Arg("input", "GeoRegistriesBulkUpdateInput!"),)))
    return [
        _object("Query", (Field("geoNode", "GeoNode", (Arg("name", "String"),)),)),
        _object("Mutation", tuple(mutations)),
    ]


def _mutation_types(generation: str) -> list[str]:
    facts = FACTS[generation]
    parts = [
        _object("GeoRegistriesUpdateInput", facts.update_input, keyword="input"),
        _object("GeoRegistriesUpdatePayload", UPDATE_PAYLOAD),
    ]
    if facts.bulk_mutation:
        parts += [
            _object("GeoRegistriesBulkUpdateInput", BULK_UPDATE_INPUT, keyword="input"),
            _object("GeoRegistriesBulkUpdatePayload", BULK_UPDATE_PAYLOAD),
        ]
    members = [kind.type_name for kind in registry_kinds(generation)
               if kind.name not in facts.union_excludes]
    parts.append("union Registrable = " + " | ".join(members))
    return parts


def _scalars_and_enums(generation: str) -> list[str]:
    facts = FACTS[generation]
    scalars = ["Time", "GeoBaseRegistryID"]
    if facts.typed_registry_ids:
        scalars += [kind.id_scalar for kind in registry_kinds(generation)]
    enums = dict(ENUMS)
    if facts.sort:
        enums.update(ENUMS_ADDED_19_2)
    enums["GeoRegistryClass"] = tuple(kind.class_value for kind in all_kinds(generation))
    return [f"scalar {name}" for name in scalars] + \
        [_enum(name, values) for name, values in enums.items()]


@lru_cache(maxsize=None)
def sdl(generation: str) -> str:
    """The SDL text of the Geo part of GitLab's schema for `generation`."""
    _check(generation)
    parts = _roots(generation) + [_geo_node(generation), _object("PageInfo", PAGE_INFO)]
    for kind in registry_kinds(generation):
        parts += _registry_types(generation, kind)
    parts += _mutation_types(generation) + _scalars_and_enums(generation)
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------ comparison with the real thing

@dataclass
class SchemaComparison:
    """What `compare_with_published` found.

    mismatches: facts of ours that the published schema contradicts (a
        missing type, field or argument, another type, another default, an
        enum value or union member more or less, a required argument or
        input field we lack).
    omissions:  output fields the published types have and ours leave out
        (harmless for validation unless the client asks for them).
    """

    mismatches: list[str] = field(default_factory=list)
    omissions: list[str] = field(default_factory=list)


def _compare_args(where: str, ours, theirs, result: SchemaComparison) -> None:
    """Arguments (or input fields) must match both ways: one we lack would
    make us refuse a document GitLab accepts, and the other way round."""
    for name, arg in ours.items():
        other = theirs.get(name)
        if other is None:
            result.mismatches.append(f"{where}({name}:) is not in the published schema")
        elif str(arg.type) != str(other.type):
            result.mismatches.append(f"{where}({name}:) is {arg.type}, published {other.type}")
        elif repr(arg.default_value) != repr(other.default_value):
            result.mismatches.append(f"{where}({name}:) defaults to {arg.default_value!r}, "
                                     f"published {other.default_value!r}")
    for name in theirs.keys() - ours.keys():
        result.mismatches.append(f"{where}({name}:) of the published schema is missing here")


def _compare_type(name: str, ours, theirs, result: SchemaComparison, root: bool) -> None:
    from graphql import (GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType,
                         GraphQLObjectType, GraphQLUnionType)

    if type(ours) is not type(theirs):
        result.mismatches.append(f"{name} is a {type(ours).__name__}, "
                                 f"published a {type(theirs).__name__}")
    elif isinstance(ours, GraphQLInputObjectType):
        _compare_args(name, ours.fields, theirs.fields, result)
    elif isinstance(ours, (GraphQLObjectType, GraphQLInterfaceType)):
        for field_name, ours_field in ours.fields.items():
            theirs_field = theirs.fields.get(field_name)
            if theirs_field is None:
                result.mismatches.append(f"{name}.{field_name} is not in the published schema")
                continue
            if str(ours_field.type) != str(theirs_field.type):
                result.mismatches.append(f"{name}.{field_name} is {ours_field.type}, "
                                         f"published {theirs_field.type}")
            _compare_args(f"{name}.{field_name}", ours_field.args, theirs_field.args, result)
        if not root:
            result.omissions += [f"{name}.{extra}"
                                 for extra in sorted(theirs.fields.keys() - ours.fields.keys())]
    elif isinstance(ours, GraphQLEnumType):
        if set(ours.values) != set(theirs.values):
            result.mismatches.append(f"enum {name} has {sorted(ours.values)}, "
                                     f"published {sorted(theirs.values)}")
    elif isinstance(ours, GraphQLUnionType):
        ours_members = sorted(member.name for member in ours.types)
        theirs_members = sorted(member.name for member in theirs.types)
        if ours_members != theirs_members:
            result.mismatches.append(f"union {name} is {ours_members}, "
                                     f"published {theirs_members}")


def compare_with_published(ours_sdl: str, published_sdl: str) -> SchemaComparison:
    """Check every type, field, argument and type reference of `ours_sdl`
    against GitLab's published SDL text (a full schema file)."""
    from graphql import build_schema
    from graphql.type import introspection_types, specified_scalar_types

    ours = build_schema(ours_sdl)
    theirs = build_schema(published_sdl, assume_valid=True, assume_valid_sdl=True)
    builtin = set(introspection_types) | set(specified_scalar_types)
    roots = {ours.query_type.name, ours.mutation_type.name if ours.mutation_type else None}
    result = SchemaComparison()
    for name, ours_type in sorted(ours.type_map.items()):
        if name in builtin:
            continue
        theirs_type = theirs.type_map.get(name)
        if theirs_type is None:
            result.mismatches.append(f"type {name} is not in the published schema")
            continue
        _compare_type(name, ours_type, theirs_type, result, root=name in roots)
    return result
