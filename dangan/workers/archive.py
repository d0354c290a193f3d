"""Import and export jobs: claim the archive_job, act as its requester, record the end.

A job whose row is not there yet (the request that queued it had not committed) is
retried shortly; a finished one is not redone (its result is returned again). The
requester is looked up afresh, so roles taken away since the request apply. An error a
caller may read (bad file, a field now hidden, no longer allowed) fails the job with
that message; anything else is retried by arq and, on the last try, fails the job.
``dangan customers import | export`` run the same job in-process with
:func:`claim` and :func:`run_claimed`; the arq functions add arq's retries. The job
records ``import.run`` / ``export.run`` in the audit trail as it finishes, or as it
fails (then in a transaction of its own), with the ``ActionLog`` of whoever runs it: the
worker (origin ``job``) or the command (``cli``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from arq.worker import Retry
from redis.asyncio import Redis

from dangan.audit.actions import ActionLog
from dangan.services.archive_jobs import queue_job_id
from dangan.services.archive_runs import claim, fail
from dangan.services.authentication import user_caller
from dangan.services.callers import Caller
from dangan.services.errors import DanganError, NotFound
from dangan.services.exports import run_export
from dangan.services.imports import run_import
from dangan.storage import ObjectStore
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant
from dangan.workers.progress import report

MAX_TRIES = 5
Work = Callable[[Caller, TenantRef, dict[str, Any]], Awaitable[dict[str, Any]]]
Progress = Callable[[int, int, str], Awaitable[None]]


async def _run(ctx: dict[str, Any], slug: str, raw_id: str, kind: str, work: Work) -> Any:
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")
    job_id = uuid.UUID(raw_id)
    job = await run_in_tenant(tenant, lambda: claim(job_id, kind))
    if job is None:
        raise Retry(defer=1)
    if job["status"] != "RUNNING":
        return job["result"]
    last_try = ctx.get("job_try", 1) >= MAX_TRIES
    return await run_claimed(tenant, job, work, _log(ctx), last_try=last_try)


async def run_claimed(
    tenant: TenantRef, job: dict[str, Any], work: Work, log: ActionLog, *, last_try: bool = True
) -> dict[str, Any]:
    """Run a job claimed with :func:`claim` (status RUNNING) as its requester; its result,
    or ``{"error": message}`` if it failed with an error a caller may read. Anything else
    propagates, failing the job first if this is the ``last_try``."""
    caller: Caller | None = None
    try:
        caller = await user_caller(tenant, job["actor_id"])
        return await work(caller, tenant, job)
    except DanganError as exc:
        await run_in_tenant(tenant, partial(_fail, log, job, caller, exc.message, exc.code))
        return {"error": exc.message}
    except Exception:
        if last_try:
            failed = partial(_fail, log, job, caller, "internal error", "INTERNAL")
            await run_in_tenant(tenant, failed)
        raise


async def _fail(
    log: ActionLog, job: dict[str, Any], caller: Caller | None, message: str, code: str
) -> None:
    """Fail the job and record it (once: not if it had ended meanwhile)."""
    if await fail(job["id"], message):
        await log.record(
            f"{job['kind'].lower()}.run",
            actor=caller,
            details={"job": str(job["id"]), "requestedBy": job["actor_id"]},
            error_codes=[code],
            request_id=str(job["id"]),
        )


def _log(ctx: dict[str, Any]) -> ActionLog:
    return ActionLog(ctx["settings"].secret_key, "job")


def redis_progress(redis: Redis, namespace: str, job_id: str) -> Progress:
    """Report a job's progress where ``archiveJob { stage }`` reads it."""

    async def progress(done: int, total: int, stage: str) -> None:
        key = queue_job_id(namespace, job_id)
        await report(redis, namespace, key, done=done, total=total, stage=stage)

    return progress


def _progress(ctx: dict[str, Any], job_id: str) -> Progress:
    return redis_progress(ctx["redis"], ctx["settings"].redis_namespace, job_id)


def import_work(objects: ObjectStore, batch_size: int, progress: Progress, log: ActionLog) -> Work:
    """Check (and, as the mode says, import) a customer file, as the person who sent it."""

    async def work(caller: Caller, tenant: TenantRef, job: dict[str, Any]) -> dict[str, Any]:
        return await run_import(
            caller, tenant, job, objects, batch_size=batch_size, progress=progress, log=log
        )

    return work


async def import_customers(ctx: dict[str, Any], slug: str, job_id: str) -> Any:
    """Check (and, as the mode says, import) a customer file, as the person who sent it."""
    batch_size = ctx["settings"].import_batch_size
    work = import_work(ctx["objects"], batch_size, _progress(ctx, job_id), _log(ctx))
    return await _run(ctx, slug, job_id, "IMPORT", work)


def export_work(objects: ObjectStore, progress: Progress, log: ActionLog) -> Work:
    """Export the customers the requester sees, as they see them."""

    async def work(caller: Caller, tenant: TenantRef, job: dict[str, Any]) -> dict[str, Any]:
        return await run_export(caller, tenant, job, objects, progress=progress, log=log)

    return work


async def export_customers(ctx: dict[str, Any], slug: str, job_id: str) -> Any:
    """Export the customers the requester sees, as they see them."""
    work = export_work(ctx["objects"], _progress(ctx, job_id), _log(ctx))
    return await _run(ctx, slug, job_id, "EXPORT", work)
