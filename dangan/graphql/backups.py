"""备份 in the API: ``backups`` (the tenant's catalogue), ``backupRuns`` and ``backupRun(id)``
(attempts, with their state, progress and why one failed), for administrators and
auditors; ``runBackup`` (administrators) asks for a backup now."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.services import backups


@strawberry.type(description="A finished backup: listed once its manifest is written")
class Backup:
    id: str = strawberry.field(description="d<yyyymmdd>: scheduled; m<yyyymmdd>T<hhmm>: on demand")
    kind: str
    schema_version: int
    tables: int
    rows: float
    attachments: int
    plain_bytes: float = strawberry.field(description="Bytes read (tables' COPY text and files)")
    stored_bytes: float = strawberry.field(description="Bytes stored, compressed and encrypted")
    started_at: datetime
    finished_at: datetime
    lock_mode: str | None = strawberry.field(description="GOVERNANCE or COMPLIANCE object lock")
    locked_until: datetime | None
    replicated_at: datetime | None
    verified_at: datetime | None
    verify_error: str | None = strawberry.field(description="What the last verification found")
    drilled_at: datetime | None = strawberry.field(description="Last restore drill")
    drill_error: str | None


@strawberry.type(description="A backup asked for: its state, progress, and why it failed")
class BackupRun:
    backup_id: str
    kind: str
    state: str = strawberry.field(
        description="queued, running, retrying, interrupted, failed or complete"
    )
    attempts: int
    started_at: datetime | None
    updated_at: datetime | None
    tables_done: int
    tables: int | None
    rows: float = strawberry.field(description="Rows read so far")
    bytes: float = strawberry.field(description="Bytes read so far")
    stage: str | None = strawberry.field(description="What it is doing, or did last")
    error: str | None = strawberry.field(description="Why the last try failed")
    retry_at: datetime | None = strawberry.field(description="When a retrying run goes again")


def _fields(cls: type, record: Any) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(record)}
    return {name: getattr(record, name) for name in cls.__annotations__ if name in names}


async def backups_list(info: Info, limit: int = 20) -> list[Backup]:
    """The tenant's finished backups, newest first (administrators and auditors)."""
    records = await backups.tenant_backups(info.context.require_caller(), limit)
    return [Backup(**_fields(Backup, r)) for r in records]


async def backup_runs(info: Info, limit: int = 20) -> list[BackupRun]:
    """The tenant's recent backups asked for, newest first, with state and progress."""
    context = info.context
    runs = await backups.tenant_backup_runs(
        context.require_caller(), context.jobs, context.settings, limit
    )
    return [BackupRun(**_fields(BackupRun, r)) for r in runs]


async def backup_run(info: Info, id: strawberry.ID) -> BackupRun:
    """One backup asked for (its id, d<yyyymmdd> or m<yyyymmdd>T<hhmm>): follow it here."""
    context = info.context
    run = await backups.tenant_backup_run(
        context.require_caller(), context.jobs, context.settings, str(id)
    )
    return BackupRun(**_fields(BackupRun, run))


async def run_backup(info: Info) -> BackupRun:
    """Back the tenant up now (administrators): one backup per minute however often it
    is asked for; follow it with backupRun(id: backupId)."""
    context = info.context
    run = await backups.request_backup(context.require_caller(), context.jobs, context.settings)
    return BackupRun(**_fields(BackupRun, run))
