"""Limits on what one GraphQL request may ask for."""
from __future__ import annotations

from graphql import (FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
                     InlineFragmentNode, OperationDefinitionNode, ValidationRule)

MAX_DEPTH = 10
MAX_QUERY_BYTES = 32 * 1024
MAX_PAGE_SIZE = 500


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
