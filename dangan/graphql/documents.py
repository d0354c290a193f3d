"""Parsing and validating GraphQL documents, each distinct text once per process.

Partner apps send the same few documents over and over; parsing and validating a
document of a few dozen fields costs milliseconds, so both are cached by the document's
text. The cost limit depends on the variables (page sizes), so it is checked per request
(see :mod:`dangan.graphql.limits`).
"""

from __future__ import annotations

from functools import lru_cache

from graphql import DocumentNode, GraphQLSchema, parse, validate


@lru_cache(maxsize=1024)
def parse_document(query: str, max_tokens: int) -> DocumentNode:
    """Parse (GraphQLError on bad syntax or too many tokens; errors aren't cached)."""
    return parse(query, max_tokens=max_tokens)


@lru_cache(maxsize=1024)
def validation_errors(schema: GraphQLSchema, query: str, max_tokens: int) -> tuple[str, ...]:
    """The schema-validation messages of a document that parsed (empty when valid)."""
    return tuple(e.message for e in validate(schema, parse_document(query, max_tokens)))
