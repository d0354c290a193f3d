"""Which backup failures are tried again: real errors where the stack can make them
(a refused connection, S3 refusing), the rest as the libraries raise them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import urllib3
from minio.error import S3Error, ServerError
from tortoise.exceptions import OperationalError

from dangan.backups.errors import BackupBusy, BackupError
from dangan.backups.transient import describe, is_transient
from dangan.storage import ObjectStore


def _wrapped(outer: type[Exception], inner: BaseException, message: str = "") -> Exception:
    """``outer`` raised from ``inner``, as the layers above the drivers do."""
    try:
        raise inner
    except BaseException as exc:
        try:
            raise outer(message or exc) from exc
        except Exception as wrapped:
            return wrapped
    raise AssertionError("unreachable")


def _s3_error(status: int, code: str) -> S3Error:
    response = urllib3.response.HTTPResponse(body=b"", status=status)
    return S3Error(response, code, "…", "/bucket/key", "req", "host")


async def test_a_database_out_of_reach_is_transient_and_named_without_its_address() -> None:
    with pytest.raises(OSError) as refused:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=5)
    assert is_transient(refused.value)
    assert describe(refused.value).startswith("a server could not be reached")
    assert "127.0.0.1" not in describe(refused.value)


async def test_s3_refusing_is_permanent(objects: ObjectStore) -> None:
    with pytest.raises(S3Error) as refused:
        await asyncio.to_thread(objects.client.get_object, "no-such-bucket-here", "key")
    assert not is_transient(refused.value)
    assert describe(refused.value) == "object storage refused: NoSuchBucket"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            asyncpg.AdminShutdownError("terminating connection due to administrator command"),
            "the database broke off (AdminShutdownError, SQLSTATE 57P01)",
        ),
        (
            _wrapped(OperationalError, asyncpg.ConnectionDoesNotExistError("closed mid-way")),
            "the database broke off (ConnectionDoesNotExistError, SQLSTATE 08003)",
        ),
        (
            asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
            "the database connection was closed",
        ),
        (
            _wrapped(
                BackupError,
                urllib3.exceptions.MaxRetryError(None, "/dangan-backups/x/data"),
                "uploading backups/x/m20261123T0101/data failed: …",
            ),
            "object storage unreachable (MaxRetryError)",
        ),
        (_s3_error(503, "ServiceUnavailable"), "object storage failed: ServiceUnavailable"),
        (_s3_error(500, "SomethingNew"), "object storage failed: SomethingNew"),
        (ServerError("bad gateway", 502), "object storage answered 502"),
        (BackupBusy("a backup of east is already running"), "a backup of east is already running"),
    ],
)
def test_transient_failures_are_tried_again(error: Exception, reason: str) -> None:
    assert is_transient(error)
    assert describe(error) == reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (BackupError("wrong master key: InvalidTag"), "wrong master key: InvalidTag"),
        (
            BackupError("east's schema has no recorded version"),
            "east's schema has no recorded version",
        ),
        (_s3_error(403, "AccessDenied"), "object storage refused: AccessDenied"),
        (_wrapped(OperationalError, asyncpg.UndefinedTableError("no t")), "internal error: …"),
        (ValueError("a bug"), "internal error: ValueError"),
    ],
)
def test_permanent_failures_are_not(error: Exception, reason: str) -> None:
    assert not is_transient(error)
    if reason == "internal error: …":
        reason = f"internal error: {type(error).__name__}"
    assert describe(error) == reason
