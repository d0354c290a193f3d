"""Which failures of a backup are worth another try, and how to name them.

Transient: the database connection lost or refused (a restart, a failover, a backend
terminated), S3 unreachable or answering 5xx, another backup of the tenant holding its
lock. Everything else — a wrong master key, a schema without a recorded version, S3
refusing with 4xx — fails the same way each time: no retry helps. An error is read
with what caused it (``raise … from``, or raised while handling it), since layers wrap:
Tortoise wraps asyncpg, the upload wraps minio in a :class:`BackupError`.

:func:`describe` gives the reason in words fit for a tenant's administrators: the kind
of failure, never a server's address.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import urllib3.exceptions
from minio.error import InvalidResponseError, S3Error, ServerError

from dangan.backups.errors import BackupBusy, BackupError

# SQLSTATE classes: 08 connection exception, 57 operator intervention (shutdown,
# cannot connect now, canceled), 53 insufficient resources, 40 transaction rollback.
_PG_CLASSES = ("08", "57", "53", "40")
_S3_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def _database(exc: BaseException) -> str | None:
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith(_PG_CLASSES) or isinstance(exc, asyncpg.InvalidCachedStatementError):
            return f"the database broke off ({type(exc).__name__}, SQLSTATE {state})"
    return None


def _storage(exc: BaseException) -> str | None:
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return f"object storage unreachable ({type(exc).__name__})"
    if isinstance(exc, ServerError) and exc.status_code >= 500:
        return f"object storage answered {exc.status_code}"
    if isinstance(exc, InvalidResponseError) and getattr(exc, "_code", 0) >= 500:
        # A proxy's error page in front of S3 (minio keeps its status privately).
        return "object storage answered with an error page"
    if isinstance(exc, S3Error) and (
        exc.code in _S3_CODES or (exc.response is not None and exc.response.status >= 500)
    ):
        return f"object storage failed: {exc.code}"
    return None


def _symptom(exc: BaseException) -> str | None:
    """What a lost connection looks like to the code that next used it."""
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return "the database connection was closed"
    if isinstance(exc, OSError):
        return f"a server could not be reached ({type(exc).__name__})"
    return None


def _transient_reason(exc: BaseException) -> str | None:
    """Why another try may succeed: the most telling cause (the server's own word, or
    which service was out of reach, rather than the closed socket it left behind)."""
    found = list(causes(exc))
    for cause in found:
        if isinstance(cause, BackupBusy):
            return cause.message
        reason = _database(cause) or _storage(cause)
        if reason is not None:
            return reason
    return next((r for r in map(_symptom, found) if r is not None), None)


def is_transient(exc: BaseException) -> bool:
    """Whether another try may succeed where this one failed."""
    return _transient_reason(exc) is not None


def describe(exc: BaseException) -> str:
    """The reason, in words: the transient cause if there is one, else a backup error's
    own message (written for operators), else the kind of error."""
    reason = _transient_reason(exc)
    if reason is not None:
        return reason
    for cause in causes(exc):
        if isinstance(cause, BackupError):
            return cause.message
        if isinstance(cause, S3Error):
            return f"object storage refused: {cause.code}"
    return f"internal error: {type(exc).__name__}"
