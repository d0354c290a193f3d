"""备份 in the API: ``backups`` (the tenant's catalogue) and ``backupRuns`` (attempts, with
their progress and why one failed), for administrators and auditors."""

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


@strawberry.type(description="One attempt at a backup: running, failed (and why) or complete")
class BackupRun:
    backup_id: str
    kind: str
    status: str
    attempts: int
    started_at: datetime
    updated_at: datetime
    tables_done: int
    tables: int | None
    rows_done: float
    bytes_done: float
    error: str | None


def _fields(cls: type, record: Any) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(record)}
    return {name: getattr(record, name) for name in cls.__annotations__ if name in names}


async def backups_list(info: Info, limit: int = 20) -> list[Backup]:
    """The tenant's finished backups, newest first (administrators and auditors)."""
    records = await backups.tenant_backups(info.context.require_caller(), limit)
    return [Backup(**_fields(Backup, r)) for r in records]


async def backup_runs(info: Info, limit: int = 20) -> list[BackupRun]:
    """The tenant's recent backup attempts, newest first, with progress and failures."""
    runs = await backups.tenant_backup_runs(info.context.require_caller(), limit)
    return [BackupRun(**_fields(BackupRun, r)) for r in runs]
