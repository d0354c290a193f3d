"""Parsing and validating GraphQL documents, each distinct text once per process.

Partner apps send the same few documents over and over; parsing and validating a
document of a few dozen fields costs milliseconds, so both are cached by the document's
text. The cost limit depends on the variables (page sizes), so it is checked per request
(see :mod:`dangan.graphql.limits`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    parse,
    validate,
)


@lru_cache(maxsize=1024)
def parse_document(query: str, max_tokens: int) -> DocumentNode:
    """Parse (GraphQLError on bad syntax or too many tokens; errors aren't cached)."""
    return parse(query, max_tokens=max_tokens)


@lru_cache(maxsize=1024)
def validation_errors(schema: GraphQLSchema, query: str, max_tokens: int) -> tuple[str, ...]:
    """The schema-validation messages of a document that parsed (empty when valid)."""
    return tuple(e.message for e in validate(schema, parse_document(query, max_tokens)))


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """The names of the fields an operation runs at its root (through fragments), in
    order and once each: what the audit trail and its alarm rules call its actions."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: dict[str, None] = {}

    def walk(selections: Iterable[SelectionNode], seen: frozenset[str]) -> None:
        for selection in selections:
            if isinstance(selection, FieldNode):
                if not selection.name.value.startswith("__"):
                    names[selection.name.value] = None
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set.selections, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    walk(fragments[name].selection_set.selections, seen | {name})

    walk(operation.selection_set.selections, frozenset())
    return list(names)
