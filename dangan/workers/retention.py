"""Retention jobs: the nightly cron that enqueues one run per tenant and day, and the run
itself (mark, then purge what is past its grace period: dangan.services.retention)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dangan.audit.actions import ActionLog
from dangan.services.errors import NotFound
from dangan.services.retention import Purger, retention_ready, run_retention
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.workers.progress import report

RETENTION_JOB = "run_tenant_retention"


def retention_job_id(namespace: str, slug: str, day: str) -> str:
    return f"{namespace}:retention:{slug}:{day}"


async def run_tenant_retention(ctx: dict[str, Any], slug: str) -> dict[str, Any]:
    """One tenant's retention run; safe to run twice (a second run finds nothing new to
    mark and nothing left to destroy). Reports progress per destruction."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")
    if not retention_ready(tenant):
        return {"tenant": slug, "skipped": f"schema version {tenant.schema_version}"}
    settings = ctx["settings"]
    job_id = ctx.get("job_id", f"retention:{slug}")

    async def progress(done: int, total: int) -> None:
        await report(
            ctx["redis"], settings.redis_namespace, job_id, done=done, total=total, stage=slug
        )

    purger = Purger(settings.secret_key, ActionLog(settings.secret_key, "job"), "job")
    outcome = await run_retention(tenant, ctx["objects"], purger, on_progress=progress)
    return {
        "tenant": slug,
        "asOf": outcome.as_of.isoformat(),
        "marked": len(outcome.marked),
        "unmarked": len(outcome.unmarked),
        "destroyed": [d.record_id for d in outcome.destructions],
        "awaitingApproval": len(outcome.waiting),
        "objectsRemoved": outcome.objects_removed,
        "objectsFailed": outcome.objects_failed,
    }


async def nightly_retention(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron, daily: enqueue tonight's retention run of every tenant (a second run of
    this cron, or a replica's, enqueues nothing new: the job ids are per tenant and
    day)."""
    settings = ctx["settings"]
    day = datetime.now(UTC).date().isoformat()
    queued: dict[str, str] = {}
    for tenant in await list_tenants():
        job_id = retention_job_id(settings.redis_namespace, tenant.slug, day)
        await ctx["redis"].enqueue_job(
            RETENTION_JOB, tenant.slug, _job_id=job_id, _queue_name=settings.queue_name
        )
        queued[tenant.slug] = job_id
    return queued
