"""The life of an archive job inside the worker: claimed, making progress, finished.

Each function runs in the job's tenant transaction. A job is claimed at most once at a
time (``FOR UPDATE``); a finished job (succeeded, failed, rejected) is never redone, and
``done`` doubles as the checkpoint a re-run resumes from.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dangan.services.archive_jobs import COLUMNS, decode
from dangan.tenants.scope import raw_connection


async def claim(job_id: uuid.UUID, kind: str) -> dict[str, Any] | None:
    """The job, marked RUNNING if it is QUEUED or was RUNNING (a re-run); None if the
    row isn't there (yet: the request that queued it may not have committed)."""
    conn = raw_connection()
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM archive_job WHERE id = $1 AND kind = $2 FOR UPDATE", job_id, kind
    )
    if row is None or row["status"] not in ("QUEUED", "RUNNING"):
        return decode(row) if row is not None else None
    row = await conn.fetchrow(
        f"UPDATE archive_job SET status = 'RUNNING', started_at = COALESCE(started_at, now())"
        f" WHERE id = $1 RETURNING {COLUMNS}",
        job_id,
    )
    return decode(row)


async def save_progress(
    job_id: uuid.UUID, done: int, total: int, result: dict[str, Any] | None = None
) -> None:
    """Record progress (and, if given, the partial result a re-run resumes with)."""
    await raw_connection().execute(
        "UPDATE archive_job SET done = $2, total = $3,"
        " result = COALESCE($4::jsonb, result) WHERE id = $1",
        job_id,
        done,
        total,
        orjson.dumps(result).decode() if result is not None else None,
    )


async def finish(job_id: uuid.UUID, result: dict[str, Any], object_key: str | None) -> None:
    await raw_connection().execute(
        "UPDATE archive_job SET status = 'SUCCEEDED', result = $2::jsonb,"
        " object_key = COALESCE($3, object_key), finished_at = now() WHERE id = $1",
        job_id,
        orjson.dumps(result).decode(),
        object_key,
    )


async def fail(job_id: uuid.UUID, message: str) -> None:
    await raw_connection().execute(
        "UPDATE archive_job SET status = 'FAILED', error = $2, finished_at = now()"
        " WHERE id = $1 AND status NOT IN ('SUCCEEDED', 'REJECTED')",
        job_id,
        message,
    )
