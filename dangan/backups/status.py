"""What the API and the CLI say about a tenant's backups: the catalogue (finished backups
only), the recent runs with their state, and the live progress of each (Redis).

A run's state:

- ``queued``: its job waits for a backup worker; ``running``: a try is under way;
- ``retrying``: a try failed for a transient reason and the job waits to try again;
- ``interrupted``: the run says ``running`` but has shown no sign of life (a table
  done, a try started) for longer than ``DANGAN_BACKUP_TIMEOUT_SECONDS``, which no live
  try can outlast: its process died (``kill -9``, a lost machine). Its job, if it was
  one, runs again once arq's in-progress mark lapses; nothing of it is listed;
- ``failed``: failed for good (``error`` says why); ``complete``: in the catalogue.

Readers need no worker: they combine ``public.backup_run``, arq's job state and the
progress the job leaves in Redis under the slot's job id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from tortoise.backends.base.client import BaseDBAsyncClient

from dangan.backups.catalogue import BackupRecord, BackupRun, find_run, list_backups, recent_runs
from dangan.backups.slots import job_id
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef
from dangan.workers.progress import read

RunState = Literal["queued", "running", "retrying", "interrupted", "failed", "complete"]
_KINDS = {"d": "scheduled", "m": "manual"}


@dataclass(frozen=True)
class RunStatus:
    backup_id: str
    kind: str
    state: RunState
    attempts: int
    started_at: datetime | None
    updated_at: datetime | None
    tables_done: int
    tables: int | None
    rows: int
    bytes: int
    stage: str | None  # what the job is doing, or did last (from Redis)
    error: str | None  # why the last try failed (a run retrying or failed)
    retry_at: datetime | None  # when a run retrying is tried again


@dataclass(frozen=True)
class BackupStatus:
    tenant: str
    backups: list[BackupRecord]  # finished, newest first
    runs: list[RunStatus]  # newest first

    @property
    def latest(self) -> BackupRecord | None:
        return self.backups[0] if self.backups else None


def run_state(
    run: BackupRun | None, job: JobStatus, *, now: datetime, stale_after: timedelta
) -> RunState | None:
    """The state of a run (None: no run and no job), from its row and its arq job."""
    if run is not None and run.status == "complete":
        return "complete"
    if run is not None and run.status == "running" and run.updated_at < now - stale_after:
        return "interrupted"  # whatever arq says: its in-progress mark outlives a kill
    if job == JobStatus.in_progress:
        return "running"
    if job == JobStatus.deferred:
        return "retrying"
    if job == JobStatus.queued:
        return "retrying" if run is not None and run.status == "failed" else "queued"
    if run is None:
        return None
    return "running" if run.status == "running" else "failed"


async def run_status(
    redis: ArqRedis,
    settings: Settings,
    tenant: TenantRef,
    backup: str,
    *,
    now: datetime | None = None,
    db: BaseDBAsyncClient | None = None,
) -> RunStatus | None:
    """One backup's run (None: never asked for, or long forgotten). ``db``: where to read
    the catalogue (as :func:`dangan.backups.catalogue.list_backups`)."""
    run = await find_run(tenant.id, backup, db)
    return await _status(redis, settings, tenant, backup, run, now)


async def backup_status(
    redis: ArqRedis,
    settings: Settings,
    tenant: TenantRef,
    *,
    now: datetime | None = None,
    runs: int = 10,
    backups: int = 20,
    db: BaseDBAsyncClient | None = None,
) -> BackupStatus:
    """The tenant's finished backups and its recent runs, newest first."""
    found = []
    for run in await recent_runs(tenant.id, limit=runs, db=db):
        status = await _status(redis, settings, tenant, run.backup_id, run, now)
        if status is not None:
            found.append(status)
    listed = await list_backups(tenant.id, limit=backups, db=db)
    return BackupStatus(tenant.slug, listed, found)


async def _status(
    redis: ArqRedis,
    settings: Settings,
    tenant: TenantRef,
    backup: str,
    run: BackupRun | None,
    now: datetime | None,
) -> RunStatus | None:
    ident = job_id(settings.redis_namespace, tenant.slug, backup)
    job = await Job(ident, redis, _queue_name=settings.backup_queue_name).status()
    stale_after = timedelta(seconds=settings.backup_timeout_seconds)
    state = run_state(run, job, now=now or datetime.now(UTC), stale_after=stale_after)
    if state is None:
        return None
    progress = await read(redis, settings.redis_namespace, ident) or {}
    return _combine(backup, state, run, progress)


def _combine(
    backup: str, state: RunState, run: BackupRun | None, progress: dict[str, Any]
) -> RunStatus:
    """Counts from the run's row (written table by table); what the job is doing from
    Redis, whose byte count also moves while attachments are copied."""
    retry_at = progress.get("retryAt") if state == "retrying" else None
    size = run.bytes_done if run else 0
    if state == "running":
        size = max(size, int(progress.get("bytes", 0)))
    return RunStatus(
        backup_id=backup,
        kind=run.kind if run else _KINDS[backup[0]],
        state=state,
        attempts=run.attempts if run else 0,
        started_at=run.started_at if run else None,
        updated_at=run.updated_at if run else None,
        tables_done=run.tables_done if run else 0,
        tables=run.tables if run else None,
        rows=run.rows_done if run else 0,
        bytes=size,
        stage=progress.get("stage"),
        error=(run.error if run else None) or progress.get("error"),
        retry_at=datetime.fromtimestamp(retry_at, UTC) if retry_at else None,
    )
