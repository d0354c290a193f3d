"""Audit jobs: the cron that checkpoints every tenant's audit head to S3, the one that
indexes which events returned which customer (``audit_access``), and the daily retention
run (one job per tenant and day) that prunes events past their retention."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from dangan.audit.access_index import INDEX_VERSION, catch_up
from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import checkpoint_tenants
from dangan.audit.retention import prune_tenant
from dangan.services.errors import NotFound
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.workers.progress import report

PRUNE_JOB = "prune_audit_trail"


def _log(ctx: dict[str, Any]) -> ActionLog:
    return ActionLog(ctx["settings"].secret_key, "job")


async def audit_checkpoints(ctx: dict[str, Any]) -> dict[str, int | None]:
    """Cron: a checkpoint of each tenant's audit head whose head moved since its last
    one (tenant -> the seq written, None: nothing new); a rerun writes nothing. Each
    checkpoint covers the ``audit.checkpoint`` event that announces it."""
    return await checkpoint_tenants(await list_tenants(), ctx["audit_checkpoints"], _log(ctx))


async def prune_audit_trail(ctx: dict[str, Any], slug: str) -> dict[str, Any]:
    """Prune one tenant's audit events past their retention (dangan.audit.retention);
    safe to run twice. Returns the report (``refused`` says why it stopped short)."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")
    settings = ctx["settings"]
    job_id = ctx.get("job_id", f"audit-retention:{slug}")

    async def progress(done: int, total: int) -> None:
        await report(
            ctx["redis"], settings.redis_namespace, job_id, done=done, total=total, stage=slug
        )

    pruned = await prune_tenant(
        tenant,
        ctx["audit_checkpoints"],
        settings.audit_retention_days,
        _log(ctx),
        on_progress=progress,
    )
    return asdict(pruned)


async def audit_retention(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron, daily: enqueue one prune job per tenant for today (a second run of this
    cron, or a replica's, enqueues nothing new: the job ids are per tenant and day)."""
    settings = ctx["settings"]
    day = datetime.now(UTC).date().isoformat()
    queued: dict[str, str] = {}
    for tenant in await list_tenants():
        job_id = f"{settings.redis_namespace}:audit-retention:{tenant.slug}:{day}"
        await ctx["redis"].enqueue_job(
            PRUNE_JOB, tenant.slug, _job_id=job_id, _queue_name=settings.queue_name
        )
        queued[tenant.slug] = job_id
    return queued


async def index_audit_access(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: index the customers of every tenant's events written since the last run
    (tenant -> events indexed). Tenants whose schema has no index yet are left out."""
    indexed: dict[str, int] = {}
    for tenant in await list_tenants():
        if tenant.schema_version >= INDEX_VERSION:
            indexed[tenant.slug] = (await catch_up(tenant)).events
    return indexed
