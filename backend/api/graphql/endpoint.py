"""Running GraphQL requests against the site's schema.

Built on the first request (site_api.py): graphql-core and the schema take
a few tenths of a second to import and build, which a site starting up,
and its engine, need not spend until someone asks.
"""
from __future__ import annotations

import logging

from graphql import (FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
                     InlineFragmentNode, OperationDefinitionNode, ValidationRule, execute,
                     parse, specified_rules, validate)
from sqlalchemy.exc import OperationalError

from backend.api.graphql.limits import MAX_DEPTH
from backend.api.graphql.schema import build_schema
from backend.api.graphql.types import ApiError, RequestContext
from backend.db import engine as db_engine

log = logging.getLogger(__name__)


class GraphQLEndpoint:
    def __init__(self, site) -> None:
        self.site = site
        self.schema = build_schema(site.replicators)
        self.rules = [*specified_rules, depth_limit_rule()]

    def run(self, query: str, variables: dict, operation: str | None,
            token: str) -> dict:
        """The response body for one request, errors included."""
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        errors = validate(self.schema, document, self.rules)
        if errors:
            return {"errors": [error.formatted for error in errors]}
        result = execute(self.schema, document,
                         context_value=RequestContext(self.site, token),
                         variable_values=variables, operation_name=operation)
        response = {"data": result.data}
        if result.errors:
            response["errors"] = [_public(error) for error in result.errors]
        return response


def busy_message() -> str:
    return (f"the tracking database is busy (another writer held it for "
            f"{db_engine.BUSY_TIMEOUT_MS / 1000:g} s); try again in a moment")


def is_database_busy(error: BaseException) -> bool:
    """SQLite's "database is locked", whichever layer raised it."""
    return isinstance(error, OperationalError) and "database is locked" in str(error)


def _public(error: GraphQLError) -> dict:
    original = error.original_error
    if original is None or isinstance(original, (ApiError, GraphQLError)):
        return error.formatted
    if is_database_busy(original):
        # SQLite: another writer held the database for the whole busy timeout.
        log.warning("GraphQL at %s: the tracking database is busy", error.path)
        formatted = error.formatted
        formatted["message"] = busy_message()
        return formatted
    log.error("GraphQL resolver failed at %s", error.path, exc_info=original)
    formatted = error.formatted
    formatted["message"] = "Internal server error"
    return formatted


def depth_limit_rule(max_depth: int = MAX_DEPTH):
    class DepthLimit(ValidationRule):
        """Refuses operations nested deeper than `max_depth` fields."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
            fragments = {definition.name.value: definition
                         for definition in self.context.document.definitions
                         if isinstance(definition, FragmentDefinitionNode)}
            depth = _depth(node.selection_set, fragments, 0, set())
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(
                    f"Query '{name}' is {depth} levels deep; the limit is {max_depth}.", node))

    return DepthLimit


def _depth(selection_set, fragments, level: int, seen: set) -> int:
    if selection_set is None:
        return level
    deepest = level
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection is bounded by the schema itself
            deepest = max(deepest, _depth(selection.selection_set, fragments, level + 1, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, level, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen or name not in fragments:
                continue  # cycles and unknown fragments are reported by other rules
            deepest = max(deepest, _depth(fragments[name].selection_set, fragments, level,
                                          seen | {name}))
    return deepest
