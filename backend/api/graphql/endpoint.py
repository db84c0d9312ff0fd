"""Running GraphQL requests against the site's schema.

Built on the first request (site_api.py): graphql-core and the schema take
a few tenths of a second to import and build, which a site starting up,
and its engine, need not spend until someone asks.
"""
from __future__ import annotations

import logging

from graphql import (GraphQLError, OperationDefinitionNode, ValidationRule, execute, parse,
                     specified_rules, validate)
from sqlalchemy.exc import OperationalError

from backend.api.graphql import cost
from backend.api.graphql.limits import MAX_COST, MAX_DEPTH
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
        refused = cost_error(document, operation, variables)
        if refused:
            return {"errors": [refused]}
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
            found = cost.depth(node.selection_set, cost.fragments_of(self.context.document))
            if found > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(
                    f"Query '{name}' is {found} levels deep; the limit is {max_depth}.", node))

    return DepthLimit


def cost_error(document, operation_name: str | None, variables: dict) -> dict | None:
    """The refusal of an operation that could answer more than MAX_COST
    values (see cost.py), or None."""
    operations = [definition for definition in document.definitions
                  if isinstance(definition, OperationDefinitionNode)]
    chosen = [op for op in operations
              if operation_name is None or (op.name and op.name.value == operation_name)]
    if len(chosen) != 1:
        return None  # execute() reports the missing or ambiguous operation
    asked = cost.cost(chosen[0], cost.fragments_of(document), variables)
    if asked <= MAX_COST:
        return None
    return {"message": f"This query could answer {asked:,} values; the limit is "
                       f"{MAX_COST:,}. Ask for fewer fields, aliases or rows per page."}
