"""Import and export jobs (``archive_job``): creating, queueing, reading and deciding them.

Who sees a job: the person who started it; a tenant's admins (every job); a manager
(``export.approve``) the exports that needed an approval whose requester belongs to
the manager's department or one below it, so they can decide them, and the exports they
decided themselves. Anyone else gets NOT_FOUND, as for a missing id.
Only the requester ever gets a download link. The arq job id is derived from the
archive_job id (``<namespace>:archive:<id>``), so a double enqueue is one job.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from arq.connections import ArqRedis

from dangan.authz.capabilities import allowed_actions, check_allowed
from dangan.authz.predicates import Numbered
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

JOB_FUNCTIONS = {"IMPORT": "import_customers", "EXPORT": "export_customers"}
COLUMNS = (
    "id, kind, status, actor_kind, actor_id, parameters, total, done, result, object_key,"
    " error, created_at, started_at, finished_at, decided_by, decided_at"
)


def queue_job_id(namespace: str, job_id: uuid.UUID | str) -> str:
    """The arq job id of an archive job: one per archive_job, whoever enqueues it."""
    return f"{namespace}:archive:{job_id}"


def check_staff(caller: Caller) -> None:
    """Imports and exports run as a person (their roles re-read when the job runs)."""
    if caller.kind != "user":
        raise Forbidden("imports and exports are for staff accounts, not partner apps")


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise NotFound("no job with this id") from exc


def _visible(caller: Caller, sql: Numbered) -> str:
    """Which jobs the caller may read, as SQL on ``archive_job``."""
    if "admin" in caller.roles:
        return "TRUE"
    mine = f"(actor_kind = {sql.value(caller.kind)} AND actor_id = {sql.value(caller.id)})"
    if "export.approve" not in allowed_actions(caller):
        return mine
    # The requester's department lies in the approver's tree (a manager without a
    # department has none: the comparison with NULL is never true).
    below = (
        "actor_kind = 'user' AND EXISTS (SELECT 1 FROM member m JOIN department_closure d"
        " ON d.descendant_id = m.department_id WHERE m.identity_id = archive_job.actor_id"
        f" AND d.ancestor_id = {sql.value(caller.department_id)})"
    )
    decided_by_me = f"decided_by = {sql.value(caller.id)}"
    return (
        f"({mine} OR (kind = 'EXPORT' AND ({decided_by_me}"
        f" OR ((status = 'AWAITING_APPROVAL' OR decided_by IS NOT NULL) AND {below}))))"
    )


def is_requester(caller: Caller, job: Any) -> bool:
    return bool(job["actor_kind"] == caller.kind and job["actor_id"] == caller.id)


def decode(job: Any) -> dict[str, Any]:
    """A job row with its jsonb columns as Python values."""
    row = dict(job)
    for column in ("parameters", "result"):
        if isinstance(row[column], str):
            row[column] = orjson.loads(row[column])
    return row


async def create_job(
    caller: Caller,
    job_id: uuid.UUID,
    kind: str,
    parameters: dict[str, Any],
    *,
    status: str,
    object_key: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    row = await raw_connection().fetchrow(
        f"INSERT INTO archive_job (id, kind, status, actor_kind, actor_id, parameters,"
        f" object_key, total) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING {COLUMNS}",
        job_id,
        kind,
        status,
        caller.kind,
        caller.id,
        orjson.dumps(parameters).decode(),
        object_key,
        total,
    )
    return decode(row)


async def enqueue(queue: ArqRedis, namespace: str, tenant_slug: str, job: dict[str, Any]) -> None:
    """Queue the job's function; arq refuses a second job with the same id."""
    await queue.enqueue_job(
        JOB_FUNCTIONS[job["kind"]],
        tenant_slug,
        str(job["id"]),
        _job_id=queue_job_id(namespace, job["id"]),
    )


async def get_job_for_caller(caller: Caller, raw_id: str) -> dict[str, Any]:
    """The job, or NOT_FOUND — the same for a missing id and one the caller may not see."""
    job_id = parse_job_id(raw_id)
    sql = Numbered()
    row = await raw_connection().fetchrow(
        f"SELECT {COLUMNS} FROM archive_job WHERE id = {sql.value(job_id)}"
        f" AND {_visible(caller, sql)}",
        *sql.params,
    )
    if row is None:
        raise NotFound("no job with this id")
    return decode(row)


async def list_jobs_for_caller(
    caller: Caller, kind: str | None, first: int
) -> list[dict[str, Any]]:
    """The newest jobs the caller may see (their own; admins every job)."""
    if not 1 <= first <= 100:
        raise BadUserInput("first must be between 1 and 100", field="first")
    sql = Numbered()
    where = [_visible(caller, sql)]
    if kind is not None:
        where.append(f"kind = {sql.value(kind)}")
    rows = await raw_connection().fetch(
        f"SELECT {COLUMNS} FROM archive_job WHERE {' AND '.join(where)}"
        f" ORDER BY created_at DESC, id LIMIT {int(first)}",
        *sql.params,
    )
    return [decode(row) for row in rows]


async def _awaiting_decision(caller: Caller, raw_id: str) -> dict[str, Any]:
    check_allowed(caller, "export.approve")
    job = await get_job_for_caller(caller, raw_id)
    if job["kind"] != "EXPORT":
        raise NotFound("no job with this id")
    if is_requester(caller, job):
        raise Forbidden("someone other than the requester must decide an export")
    if job["status"] != "AWAITING_APPROVAL":
        raise Conflict(f"this export is {job['status']}, not awaiting approval", field="id")
    return job


async def _decide(
    caller: Caller, job: dict[str, Any], status: str, result: dict[str, Any] | None
) -> dict[str, Any]:
    row = await raw_connection().fetchrow(
        f"UPDATE archive_job SET status = $2, decided_by = $3, decided_at = now(),"
        f" result = $4::jsonb, finished_at = CASE WHEN $2 = 'REJECTED' THEN now() END"
        f" WHERE id = $1 AND status = 'AWAITING_APPROVAL' RETURNING {COLUMNS}",
        job["id"],
        status,
        caller.id,
        orjson.dumps(result).decode() if result is not None else None,
    )
    if row is None:
        raise Conflict("this export was decided meanwhile", field="id")
    return decode(row)


async def approve_export(
    caller: Caller, raw_id: str, queue: ArqRedis, namespace: str
) -> dict[str, Any]:
    """Let a large export run (an admin or manager, never its requester)."""
    async with raw_connection().savepoint():
        job = await _decide(caller, await _awaiting_decision(caller, raw_id), "QUEUED", None)
    await enqueue(queue, namespace, caller.tenant_slug, job)
    return job


async def reject_export(caller: Caller, raw_id: str, comment: str) -> dict[str, Any]:
    """Refuse a large export, saying why; it never runs."""
    comment = " ".join(comment.split())
    if not 1 <= len(comment) <= 1000:
        raise BadUserInput("comment must be 1 to 1,000 characters", field="comment")
    async with raw_connection().savepoint():
        job = await _awaiting_decision(caller, raw_id)
        return await _decide(caller, job, "REJECTED", {"comment": comment})
