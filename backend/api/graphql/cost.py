"""What a GraphQL request may cost, computed from its document in one pass.

Two measures, each over the operation with its fragments expanded, each in
time linear in the document (a fragment's figure is computed once and
reused wherever it is spread, so fragments that spread each other twice
over, `F1 { ...F2 ...F2 }`, `F2 { ...F3 ...F3 }`…, cost their size, not 2^k):

- depth: the deepest chain of fields (introspection fields aside);
- cost: an upper bound of the values a response can hold. Every field
  counts 1, times the page sizes of the lists around it: a field with a
  `first` or `last` argument (a connection), `buckets` (status history) or
  `limit` (failure groups) multiplies what is inside it by that number, or
  by the page it gets without one. Aliases count as the fields they are, so
  500 aliases of a 100-row registries query cost 500 times one.
"""
from __future__ import annotations

from graphql import (FieldNode, FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode,
                     IntValueNode, OperationDefinitionNode, VariableNode)

SIZE_ARGUMENTS = ("first", "last", "buckets", "limit")
# What a list field returns when no size is given (the resolvers' defaults).
DEFAULT_SIZES = {"statusHistory": 200, "registryFailureGroups": 50}
DEFAULT_PAGE = 20  # a registries connection without first/last


def fragments_of(document) -> dict:
    return {definition.name.value: definition for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)}


def depth(selection_set, fragments: dict) -> int:
    """Levels of fields below `selection_set`."""
    return _Walk(fragments, {}).depth(selection_set)


def cost(operation: OperationDefinitionNode, fragments: dict, variables: dict) -> int:
    return _Walk(fragments, variables).cost(operation.selection_set)


class _Walk:
    def __init__(self, fragments: dict, variables: dict) -> None:
        self.fragments = fragments
        self.variables = variables
        self._depths: dict[str, int] = {}
        self._costs: dict[str, int] = {}
        self._visiting: set[str] = set()

    def _fragment(self, name: str, memo: dict, measure):
        """A fragment's figure, once; cycles and unknown names are left to the
        validation rules (they count 0 here)."""
        if name in memo:
            return memo[name]
        if name in self._visiting or name not in self.fragments:
            return 0
        self._visiting.add(name)
        try:
            memo[name] = measure(self.fragments[name].selection_set)
        finally:
            self._visiting.discard(name)
        return memo[name]

    def depth(self, selection_set) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue  # introspection is bounded by the schema itself
                deepest = max(deepest, 1 + self.depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value, self._depths,
                                                      self.depth))
        return deepest

    def cost(self, selection_set) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += 1 + self._size(selection) * self.cost(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.cost(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, self._costs, self.cost)
        return total

    def _size(self, field: FieldNode) -> int:
        """How many times what is inside the field can appear in the answer."""
        name = field.name.value
        for argument in field.arguments or ():
            if argument.name.value in SIZE_ARGUMENTS:
                value = argument.value
                if isinstance(value, VariableNode):
                    value = self.variables.get(value.name.value)
                elif isinstance(value, IntValueNode):
                    value = int(value.value)
                if isinstance(value, int) and not isinstance(value, bool):
                    return max(1, value)
        if name.endswith("Registries"):
            return DEFAULT_PAGE
        return DEFAULT_SIZES.get(name, 1)
