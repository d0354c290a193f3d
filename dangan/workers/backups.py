"""Backup jobs (issue 7): one arq job per tenant and slot, on the backup queue.

``backup_tenant`` makes (or finds) a tenant's backup with
:func:`dangan.backups.writer.run_backup`, its progress in Redis under the slot's job id
(:func:`dangan.backups.slots.job_id`). A transient failure (:mod:`dangan.backups.transient`:
database or S3 unreachable, another backup of the tenant running) is tried again after
``DANGAN_BACKUP_RETRY_SECONDS`` (5 s), then four times longer each time (20 s, 80 s …, at
most ``DANGAN_BACKUP_RETRY_MAX_SECONDS``), up to ``DANGAN_BACKUP_MAX_TRIES``. Anything
else, the last try, or a backup taking longer than ``DANGAN_BACKUP_TIMEOUT_SECONDS``
fails for good: the run is marked failed with the reason, the tenant's trail and alert
table say so (:mod:`dangan.backups.failures`), the error is logged, and the alert goes to
the tenant's webhook and the operators' (``DANGAN_ALARM_WEBHOOK_URL``).

One backup per slot, however often it is asked for: arq refuses a second job with the
slot's id while one is queued, running, or its result is kept (a day); past that,
``run_backup`` finds the backup in the catalogue and makes nothing. A slot that failed for
good may be asked for again (:func:`enqueue_backup` drops the failed result). A worker
killed mid-backup leaves its job in the queue: arq runs it again once the job's
in-progress mark lapses (the job's timeout and a minute), and that try writes the
slot's objects afresh; nothing of the cut-off try was ever listed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import structlog
from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from arq.jobs import Job
from arq.worker import Retry
from redis.asyncio import Redis

from dangan.audit.actions import ActionLog, error_code
from dangan.backups.catalogue import fail_run
from dangan.backups.errors import BackupError
from dangan.backups.failures import Failure, record_failure
from dangan.backups.schedule import due_tenants
from dangan.backups.slots import backup_id, check_backup_id, job_id
from dangan.backups.transient import describe, is_transient
from dangan.backups.writer import BackupOutcome, BackupProgress, run_backup
from dangan.settings import Settings
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import TenantRef
from dangan.workers.alarms import DELIVER, webhook_job_id
from dangan.workers.progress import read, report

BACKUP = "backup_tenant"
# arq's own deadline for the job, past ours: ours fires first and is recorded as a failure.
ARQ_GRACE_SECONDS = 60
log = structlog.get_logger("dangan.backups")


class BackupFailed(BackupError):
    """A backup that failed for good (the job's result; the reason is recorded)."""


class BackupTimedOut(BackupError):
    """The backup took longer than DANGAN_BACKUP_TIMEOUT_SECONDS."""


class BackupCutOff(BackupError):
    """The last try stopped without an end of its own (its worker was lost)."""


def retry_delay(settings: Settings, job_try: int) -> float:
    """The wait after try ``job_try`` failed: 5 s, 20 s, 80 s … at most the cap."""
    delay = settings.backup_retry_seconds * 4 ** (job_try - 1)
    return float(min(delay, settings.backup_retry_max_seconds))


@dataclass(frozen=True)
class _Progress:
    """The slot's progress in Redis (``dangan.workers.progress``), as readers see it."""

    redis: Redis
    namespace: str
    job: str
    attempt: int

    async def step(self, step: BackupProgress) -> None:
        facts = {"state": "running", "rows": step.rows, "bytes": step.bytes}
        await report(
            self.redis,
            self.namespace,
            self.job,
            done=step.tables_done,
            total=step.tables,
            stage=step.stage,
            extra={**facts, "attempt": self.attempt},
        )

    async def last(self) -> dict[str, Any]:
        return await read(self.redis, self.namespace, self.job) or {}

    async def state(self, state: str, stage: str, **facts: Any) -> None:
        """A new state; the counts stay those of the last step (a new try starts at 0)."""
        last = {} if state == "running" else await self.last()
        kept: dict[str, Any] = {k: last[k] for k in ("rows", "bytes") if k in last}
        await report(
            self.redis,
            self.namespace,
            self.job,
            done=int(last.get("done", 0)),
            total=int(last.get("total", 0)),
            stage=stage,
            extra={**kept, **facts, "state": state, "attempt": self.attempt},
        )


def _audit(settings: Settings) -> ActionLog:
    return ActionLog(settings.secret_key, "job")


async def backup_tenant(ctx: dict[str, Any], slug: str, backup: str, kind: str) -> dict[str, Any]:
    """Make (or find) ``slug``'s backup ``backup``; see the module."""
    settings: Settings = ctx["settings"]
    check_backup_id(backup)
    tenant = await find_tenant(slug)
    if tenant is None:
        return {"tenant": slug, "backup": backup, "skipped": "no such tenant"}
    tries = int(ctx.get("job_try", 1))
    ident = job_id(settings.redis_namespace, slug, backup)
    progress = _Progress(ctx["redis"], settings.redis_namespace, ident, tries)
    if tries > settings.backup_max_tries:
        # arq runs the job once more than the tries allowed: the last was cut off.
        cut = BackupCutOff("its last try stopped midway (the worker running it was lost)")
        failure = await _give_up(ctx, tenant, backup, kind, tries - 1, cut, progress)
        raise BackupFailed(failure.summary)
    await progress.state("running", "starting")
    try:
        outcome = await _run(ctx, tenant, backup, kind, progress)
    except Exception as exc:
        if is_transient(exc) and tries < settings.backup_max_tries:
            await _retry_later(settings, tenant, backup, tries, exc, progress)
        failure = await _give_up(ctx, tenant, backup, kind, tries, exc, progress)
        raise BackupFailed(failure.summary) from exc
    record = outcome.record
    await progress.state("complete", "made" if outcome.made else "already there", rows=record.rows)
    return {
        "tenant": slug,
        "backup": backup,
        "made": outcome.made,
        "tables": record.tables,
        "rows": record.rows,
        "storedBytes": record.stored_bytes,
    }


async def _run(
    ctx: dict[str, Any], tenant: TenantRef, backup: str, kind: str, progress: _Progress
) -> BackupOutcome:
    settings: Settings = ctx["settings"]
    deadline = asyncio.timeout(settings.backup_timeout_seconds)
    try:
        async with deadline:
            return await run_backup(
                settings,
                ctx["backups"],
                ctx["objects"],
                tenant,
                backup,
                kind,
                _audit(settings),
                progress.step,
            )
    except Exception:
        if not deadline.expired():
            raise
    # Not a cause to keep: a timeout is an OSError, which would read as transient.
    raise BackupTimedOut(
        f"it took longer than {settings.backup_timeout_seconds} s (DANGAN_BACKUP_TIMEOUT_SECONDS)"
    )


async def _retry_later(
    settings: Settings,
    tenant: TenantRef,
    backup: str,
    tries: int,
    exc: Exception,
    progress: _Progress,
) -> NoReturn:
    delay = retry_delay(settings, tries)
    reason = describe(exc)
    log.warning(
        "backup failed, trying again",
        tenant=tenant.slug,
        backup=backup,
        attempt=tries,
        retry_in_seconds=delay,
        reason=reason,
    )
    # The run's row says why in the same words (the writer's own may name a server).
    await fail_run(tenant.id, backup, reason)
    retry_at = time.time() + delay
    await progress.state("retrying", f"trying again: {reason}", error=reason, retryAt=retry_at)
    raise Retry(defer=delay) from exc


async def _give_up(
    ctx: dict[str, Any],
    tenant: TenantRef,
    backup: str,
    kind: str,
    tries: int,
    exc: BaseException,
    progress: _Progress,
) -> Failure:
    """Record a backup that failed for good, log it, and send its alert."""
    settings: Settings = ctx["settings"]
    failure = Failure(tenant, backup, kind, tries, describe(exc), error_code(exc))
    log.error(
        "backup failed",
        tenant=tenant.slug,
        backup=backup,
        kind=kind,
        tries=tries,
        reason=failure.reason,
        exc_info=exc,
    )
    await progress.state("failed", failure.reason, error=failure.reason)
    try:
        opened = await record_failure(failure, _audit(settings))
    except Exception:
        log.exception("could not record the failed backup", tenant=tenant.slug, backup=backup)
        return failure
    if opened is not None:
        for target in ("tenant", "platform"):
            await ctx["redis"].enqueue_job(
                DELIVER,
                tenant.slug,
                opened.id,
                target,
                _job_id=webhook_job_id(settings.redis_namespace, tenant.id, opened.id, target),
                _queue_name=settings.alarm_queue_name,
            )
    return failure


@dataclass(frozen=True)
class QueuedBackup:
    tenant: str
    backup_id: str
    job_id: str  # also the key of its progress (dangan.workers.progress.read)
    queued: bool  # False: the slot's job was already queued, running or done


async def enqueue_backup(
    redis: ArqRedis, settings: Settings, tenant: TenantRef, kind: str, now: datetime
) -> QueuedBackup:
    """Ask for ``tenant``'s backup of the slot ``now`` falls in (``kind``: scheduled, one
    a day; manual, one a minute); asking again for the same slot queues nothing more."""
    backup = backup_id(kind, now)
    ident = job_id(settings.redis_namespace, tenant.slug, backup)
    job = await _enqueue(redis, settings, tenant.slug, backup, kind, ident)
    if job is None and await _failed_for_good(redis, settings, ident):
        # A slot that failed for good may be asked for again: its failed result goes.
        await redis.delete(result_key_prefix + ident)
        job = await _enqueue(redis, settings, tenant.slug, backup, kind, ident)
    return QueuedBackup(tenant.slug, backup, ident, queued=job is not None)


async def _enqueue(
    redis: ArqRedis, settings: Settings, slug: str, backup: str, kind: str, ident: str
) -> Job | None:
    return await redis.enqueue_job(
        BACKUP, slug, backup, kind, _job_id=ident, _queue_name=settings.backup_queue_name
    )


async def _failed_for_good(redis: ArqRedis, settings: Settings, ident: str) -> bool:
    result = await Job(ident, redis, _queue_name=settings.backup_queue_name).result_info()
    return result is not None and not result.success


async def scheduled_backups(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron, every few minutes: queue the day's scheduled backup of each tenant whose time
    has come (:mod:`dangan.backups.schedule`; tenant -> backup id queued)."""
    return await queue_due_backups(ctx["redis"], ctx["settings"], datetime.now(UTC))


async def queue_due_backups(redis: ArqRedis, settings: Settings, now: datetime) -> dict[str, str]:
    """Queue the scheduled backups due at ``now``: each tenant once a day, at its time.
    A second tick, or another worker's, queues nothing new (the run is recorded, or the
    job id per tenant and day is taken)."""
    tenants = [t for t in await list_tenants() if t.status != "provisioning"]
    queued: dict[str, str] = {}
    for tenant in await due_tenants(settings, tenants, now.astimezone(UTC)):
        asked = await enqueue_backup(redis, settings, tenant, "scheduled", now)
        if asked.queued:
            queued[tenant.slug] = asked.backup_id
    return queued
