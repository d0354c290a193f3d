"""Rejecting oversized documents before they run (OWASP GraphQL cheat sheet).

Token count is capped by the parser; this module caps nesting depth, aliases and an
estimated cost in which a list field multiplies what it contains by its page size
(``first``), so ``customers(first: 1000) { edges { node { owner { ... } } } }`` is
priced as the thousand rows it can return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_cost: int


def _page_size(node: FieldNode, variables: dict[str, Any]) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value not in ("first", "last"):
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            return given if isinstance(given, int) else DEFAULT_PAGE
    return None


class _Walker:
    def __init__(self, document: DocumentNode, variables: dict[str, Any]) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = variables
        self.max_depth = 0
        self.cost = 0

    def walk(
        self, selections: SelectionSetNode | None, depth: int, weight: int, seen: frozenset[str]
    ) -> None:
        if selections is None:
            return
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                self.max_depth = max(self.max_depth, depth)
                self.cost += weight
                page = _page_size(selection, self.variables)
                inner = weight * max(page, 1) if page is not None else weight
                self.walk(selection.selection_set, depth + 1, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                self.walk(selection.selection_set, depth, weight, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    self.walk(fragment.selection_set, depth, weight, seen | {name})


def _count_aliases(node: Any) -> int:
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, FieldNode) and current.alias is not None:
            count += 1
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


def check_limits(
    document: DocumentNode, variables: dict[str, Any], limits: Limits
) -> list[GraphQLError]:
    errors: list[GraphQLError] = []
    aliases = sum(_count_aliases(d) for d in document.definitions)
    if aliases > limits.max_aliases:
        errors.append(
            GraphQLError(
                f"the document uses {aliases} aliases; at most {limits.max_aliases} are allowed"
            )
        )
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        walker = _Walker(document, variables)
        walker.walk(definition.selection_set, 1, 1, frozenset())
        if walker.max_depth > limits.max_depth:
            errors.append(
                GraphQLError(
                    f"the query is nested {walker.max_depth} levels deep;"
                    f" at most {limits.max_depth} are allowed"
                )
            )
        if walker.cost > limits.max_cost:
            errors.append(
                GraphQLError(
                    f"the query could return about {walker.cost} values;"
                    f" at most {limits.max_cost} are allowed"
                    " (ask for smaller pages or fewer fields)"
                )
            )
    return errors
