"""Domain errors. Each carries the GraphQL ``extensions.code`` it becomes (DESIGN.md, Errors).

Services raise these; the GraphQL layer turns them into errors with a code and, where
the error concerns one input field, that field's name. Anything else that escapes a
service is an internal error and reaches the caller only as INTERNAL with a request id.
"""

from __future__ import annotations


class DanganError(Exception):
    """Base of every error a caller may see verbatim."""

    code = "INTERNAL"

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # Structured facts for the caller (e.g. duplicate candidates), added to
        # ``extensions``; only ever what the caller may see.
        self.details = details or {}


class Unauthenticated(DanganError):
    code = "UNAUTHENTICATED"


class Forbidden(DanganError):
    code = "FORBIDDEN"


class NotFound(DanganError):
    """Missing and invisible look the same: callers can't tell which (no oracle)."""

    code = "NOT_FOUND"


class BadUserInput(DanganError):
    code = "BAD_USER_INPUT"


class Conflict(DanganError):
    code = "CONFLICT"


class RateLimited(DanganError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
