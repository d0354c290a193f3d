"""The life of an archive job inside the worker: claimed, making progress, finished.

Each function runs in the job's tenant transaction. Claiming takes a queued job or a
running one again (a re-run after a crash, or a second delivery while the first still
runs); a finished job (succeeded, failed, rejected) is never redone. ``done`` doubles as
the checkpoint a re-run resumes from, and writers lock the job's row with each batch
(:func:`lock_progress`), so two runs of one job never write the same batch.
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


async def lock_progress(job_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    """The job's checkpoint and partial result, its row locked until the transaction
    ends (two runs of one job write their batches one after the other)."""
    row = await raw_connection().fetchrow(
        f"SELECT {COLUMNS} FROM archive_job WHERE id = $1 FOR UPDATE", job_id
    )
    job = decode(row)
    return job["done"], job["result"] or {}


async def save_checked(job_id: uuid.UUID, total: int, result: dict[str, Any]) -> None:
    """Keep the outcome of a job's checks, unless another run of it kept its own first
    (then that one stands, with the progress made on it)."""
    await raw_connection().execute(
        "UPDATE archive_job SET total = $2, result = $3::jsonb"
        " WHERE id = $1 AND status = 'RUNNING' AND result IS NULL",
        job_id,
        total,
        orjson.dumps(result).decode(),
    )


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


async def finish(job_id: uuid.UUID, result: dict[str, Any], object_key: str | None) -> bool:
    """Record a running job's success (a job another run finished keeps its result);
    True if this call finished it (so its audit event is written once)."""
    status = await raw_connection().execute(
        "UPDATE archive_job SET status = 'SUCCEEDED', result = $2::jsonb,"
        " object_key = COALESCE($3, object_key), finished_at = now()"
        " WHERE id = $1 AND status = 'RUNNING'",
        job_id,
        orjson.dumps(result).decode(),
        object_key,
    )
    return status != "UPDATE 0"


async def fail(job_id: uuid.UUID, message: str) -> bool:
    """Record a job's failure, unless it ended otherwise; True if this call failed it."""
    status = await raw_connection().execute(
        "UPDATE archive_job SET status = 'FAILED', error = $2, finished_at = now()"
        " WHERE id = $1 AND status NOT IN ('SUCCEEDED', 'REJECTED', 'FAILED')",
        job_id,
        message,
    )
    return status != "UPDATE 0"
