"""Import and export jobs: claim the archive_job, act as its requester, record the end.

A job whose row is not there yet (the request that queued it had not committed) is
retried shortly; a finished one is not redone (its result is returned again). The
requester is looked up afresh, so roles taken away since the request apply. An error a
caller may read (bad file, a field now hidden, no longer allowed) fails the job with
that message; anything else is retried by arq and, on the last try, fails the job.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from arq.worker import Retry

from dangan.services.archive_jobs import queue_job_id
from dangan.services.archive_runs import claim, fail
from dangan.services.authentication import user_caller
from dangan.services.callers import Caller
from dangan.services.errors import DanganError, NotFound
from dangan.services.exports import run_export
from dangan.services.imports import run_import
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant
from dangan.workers.progress import report

MAX_TRIES = 5
Work = Callable[[Caller, TenantRef, dict[str, Any]], Awaitable[dict[str, Any]]]


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
    try:
        caller = await user_caller(tenant, job["actor_id"])
        return await work(caller, tenant, job)
    except DanganError as exc:
        message = exc.message
        await run_in_tenant(tenant, lambda: fail(job_id, message))
        return {"error": message}
    except Exception:
        if ctx.get("job_try", 1) >= MAX_TRIES:
            await run_in_tenant(tenant, lambda: fail(job_id, "internal error"))
        raise


def _progress(ctx: dict[str, Any], job_id: str) -> Callable[[int, int, str], Awaitable[None]]:
    async def progress(done: int, total: int, stage: str) -> None:
        settings = ctx["settings"]
        key = queue_job_id(settings.redis_namespace, job_id)
        await report(
            ctx["redis"], settings.redis_namespace, key, done=done, total=total, stage=stage
        )

    return progress


async def import_customers(ctx: dict[str, Any], slug: str, job_id: str) -> Any:
    """Check (and, as the mode says, import) a customer file, as the person who sent it."""

    async def work(caller: Caller, tenant: TenantRef, job: dict[str, Any]) -> dict[str, Any]:
        return await run_import(
            caller,
            tenant,
            job,
            ctx["objects"],
            batch_size=ctx["settings"].import_batch_size,
            progress=_progress(ctx, job_id),
        )

    return await _run(ctx, slug, job_id, "IMPORT", work)


async def export_customers(ctx: dict[str, Any], slug: str, job_id: str) -> Any:
    """Export the customers the requester sees, as they see them."""

    async def work(caller: Caller, tenant: TenantRef, job: dict[str, Any]) -> dict[str, Any]:
        return await run_export(
            caller, tenant, job, ctx["objects"], progress=_progress(ctx, job_id)
        )

    return await _run(ctx, slug, job_id, "EXPORT", work)
