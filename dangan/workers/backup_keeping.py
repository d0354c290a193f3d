"""The nightly upkeep of backups, after the backups themselves: per tenant, prune by the
keep-policy (dangan.backups.pruning), then copy to the replica the kept backups it does
not have yet (dangan.backups.replica). One job per tenant and day: a second run of the
cron, or of a job, changes nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from dangan.audit.actions import ActionLog
from dangan.backups.pruning import prune_backups
from dangan.backups.replica import replicate_pending
from dangan.backups.store import BackupStore, open_backup_store, replica_client
from dangan.services.errors import NotFound
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.workers.progress import report

KEEP_JOB = "keep_tenant_backups"
log = structlog.get_logger("dangan.backups")


def upkeep_job_id(namespace: str, slug: str, day: str) -> str:
    return f"{namespace}:backup-keep:{slug}:{day}"


async def _store(ctx: dict[str, Any]) -> tuple[BackupStore, str | None]:
    """The worker's backup store if it opened one at startup; else one opened now, with
    its replica if that endpoint answers (else without it, and why: the main bucket is
    pruned all the same, the copies wait for tomorrow)."""
    if isinstance(ctx.get("backups"), BackupStore):
        return ctx["backups"], None
    settings = ctx["settings"]
    try:
        return await open_backup_store(ctx["s3"], settings, replica_client(settings)), None
    except Exception as exc:
        if settings.backup_replica_endpoint is None:
            raise
        log.warning("backup replica unavailable", error=f"{exc.__class__.__name__}: {exc}")
        return await open_backup_store(ctx["s3"], settings), exc.__class__.__name__


async def keep_tenant_backups(ctx: dict[str, Any], slug: str) -> dict[str, Any]:
    """Prune one tenant's backups, then replicate the pending ones; returns a summary
    (progress in Redis under the job's id: 0/2 pruning, 1/2 replicating, 2/2 done)."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")
    settings = ctx["settings"]
    job_id = ctx.get("job_id") or upkeep_job_id(settings.redis_namespace, slug, "now")
    actions = ActionLog(settings.secret_key, "job")

    async def stage(done: int, name: str) -> None:
        await report(ctx["redis"], settings.redis_namespace, job_id, done=done, total=2, stage=name)

    store, replica_down = await _store(ctx)
    now = datetime.now(UTC)
    await stage(0, f"{slug}: pruning")
    pruned = await prune_backups(settings, store, tenant, now, actions)

    async def copied(done: int, total: int) -> None:
        await stage(1, f"{slug}: replicating {done}/{total}")

    await stage(1, f"{slug}: replicating")
    outcomes = await replicate_pending(settings, store, tenant, actions, now, copied)
    await stage(2, f"{slug}: done")
    return {
        "tenant": slug,
        "kept": [keeper.id for keeper in pruned.kept],
        "removed": pruned.removed,
        "orphans": pruned.orphans,
        "waiting": [w.backup for w in pruned.waiting],
        "locked": sorted(pruned.locked),
        "problems": pruned.problems + ([f"replica: {replica_down}"] if replica_down else []),
        "replicated": [o.backup for o in outcomes if o.copied is not None],
        "notReplicated": {o.backup: o.error for o in outcomes if o.copied is None},
    }


async def backup_upkeep(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron, nightly after the backups: one upkeep job per tenant for today (the ids are
    per tenant and day, so a second run of this cron enqueues nothing new)."""
    settings = ctx["settings"]
    day = datetime.now(UTC).date().isoformat()
    queued: dict[str, str] = {}
    for tenant in await list_tenants():
        job_id = upkeep_job_id(settings.redis_namespace, tenant.slug, day)
        await ctx["redis"].enqueue_job(
            KEEP_JOB, tenant.slug, _job_id=job_id, _queue_name=settings.queue_name
        )
        queued[tenant.slug] = job_id
    return queued
