"""Shaping errors for callers: a code on every error, nothing internal ever leaks.

- :class:`DanganError` raised by a service → its message, ``extensions.code`` and,
  where it concerns one input, ``extensions.field``.
- GraphQL's own errors (syntax, unknown field, variables that don't coerce) → BAD_USER_INPUT.
- Anything else → INTERNAL with the request id; the real error goes to the server log.
"""

from __future__ import annotations

from typing import Any

import structlog
from graphql import GraphQLError

from dangan.services.errors import DanganError

log = structlog.get_logger("dangan.graphql")


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def error_code(error: GraphQLError) -> str:
    """The ``extensions.code`` :func:`format_error` gives ``error`` (without logging)."""
    original = error.original_error
    if isinstance(original, DanganError):
        return original.code
    if original is None or isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"
    return "INTERNAL"


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    original = error.original_error
    body: dict[str, Any]
    if isinstance(original, DanganError):
        extra: dict[str, Any] = {"field": original.field} if original.field else {}
        extra.update(original.details)
        retry_after = getattr(original, "retry_after", None)
        if retry_after is not None:
            extra["retryAfter"] = retry_after
        body = error_body(original.message, original.code, **extra)
    elif original is None or isinstance(original, GraphQLError):
        # GraphQL's own complaints: syntax, unknown fields, variables of the wrong type.
        body = error_body(error.message, "BAD_USER_INPUT")
    else:
        log.error(
            "internal error",
            request_id=request_id,
            path=error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        body = error_body(
            f"internal error (request id {request_id})", "INTERNAL", requestId=request_id
        )
    if error.path:
        body["path"] = error.path
    if error.locations:
        body["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    return body
