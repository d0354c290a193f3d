"""The backup catalogue (``public.backup``: finished backups only) and the runs that
produce them (``public.backup_run``: attempts, progress, failures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from dangan.backups.manifest import Manifest, backup_prefix

_BACKUP_COLUMNS = (
    "b.tenant_id, t.slug AS tenant, b.id, b.kind, b.prefix, b.schema_version, b.master_key_id,"
    " b.tables, b.rows, b.plain_bytes, b.stored_bytes, b.attachments, b.started_at,"
    " b.finished_at, b.lock_mode, b.locked_until, b.replicated_at, b.verified_at,"
    " b.verify_error, b.drilled_at, b.drill_error"
)


@dataclass(frozen=True)
class BackupRecord:
    tenant_id: int
    tenant: str
    id: str
    kind: str
    prefix: str
    schema_version: int
    master_key_id: str
    tables: int
    rows: int
    plain_bytes: int
    stored_bytes: int
    attachments: int
    started_at: datetime
    finished_at: datetime
    lock_mode: str | None
    locked_until: datetime | None
    replicated_at: datetime | None
    verified_at: datetime | None
    verify_error: str | None
    drilled_at: datetime | None
    drill_error: str | None


@dataclass(frozen=True)
class BackupRun:
    tenant_id: int
    backup_id: str
    kind: str
    status: str
    attempts: int
    started_at: datetime
    updated_at: datetime
    tables_done: int
    tables: int | None
    rows_done: int
    bytes_done: int
    error: str | None


def _db() -> BaseDBAsyncClient:
    return connections.get("default")


async def find_backup(
    tenant_id: int, backup_id: str, db: BaseDBAsyncClient | None = None
) -> BackupRecord | None:
    rows = await (db or _db()).execute_query_dict(
        f"SELECT {_BACKUP_COLUMNS} FROM public.backup b JOIN public.tenant t ON t.id = b.tenant_id"
        " WHERE b.tenant_id = $1 AND b.id = $2",
        [tenant_id, backup_id],
    )
    return BackupRecord(**rows[0]) if rows else None


async def list_backups(
    tenant_id: int | None = None,
    *,
    limit: int | None = 100,
    db: BaseDBAsyncClient | None = None,
) -> list[BackupRecord]:
    """Finished backups, newest first (of one tenant, or of all; ``limit=None``: every one).
    ``db``: where to read (default: the caller's transaction, if any, else the pool)."""
    where = "WHERE b.tenant_id = $2" if tenant_id is not None else ""
    args: list[Any] = [limit] + ([tenant_id] if tenant_id is not None else [])
    rows = await (db or _db()).execute_query_dict(
        f"SELECT {_BACKUP_COLUMNS} FROM public.backup b JOIN public.tenant t ON t.id = b.tenant_id"
        f" {where} ORDER BY b.finished_at DESC, t.slug LIMIT $1",
        args,
    )
    return [BackupRecord(**row) for row in rows]


async def find_run(
    tenant_id: int, backup_id: str, db: BaseDBAsyncClient | None = None
) -> BackupRun | None:
    rows = await (db or _db()).execute_query_dict(
        "SELECT * FROM public.backup_run WHERE tenant_id = $1 AND backup_id = $2",
        [tenant_id, backup_id],
    )
    return BackupRun(**rows[0]) if rows else None


async def recent_runs(
    tenant_id: int, *, limit: int = 20, db: BaseDBAsyncClient | None = None
) -> list[BackupRun]:
    rows = await (db or _db()).execute_query_dict(
        "SELECT * FROM public.backup_run WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT $2",
        [tenant_id, limit],
    )
    return [BackupRun(**row) for row in rows]


async def start_run(tenant_id: int, backup_id: str, kind: str) -> None:
    """Record an attempt (the first, or one more after a failure or a crash)."""
    await _db().execute_query(
        "INSERT INTO public.backup_run (tenant_id, backup_id, kind, status)"
        " VALUES ($1, $2, $3, 'running')"
        " ON CONFLICT (tenant_id, backup_id) DO UPDATE SET status = 'running',"
        " attempts = backup_run.attempts + 1, updated_at = now(), error = NULL,"
        " tables_done = 0, rows_done = 0, bytes_done = 0",
        [tenant_id, backup_id, kind],
    )


async def note_progress(
    tenant_id: int, backup_id: str, *, tables_done: int, tables: int, rows: int, size: int
) -> None:
    await _db().execute_query(
        "UPDATE public.backup_run SET tables_done = $3, tables = $4, rows_done = $5,"
        " bytes_done = $6, updated_at = now() WHERE tenant_id = $1 AND backup_id = $2",
        [tenant_id, backup_id, tables_done, tables, rows, size],
    )


async def fail_run(tenant_id: int, backup_id: str, error: str) -> None:
    await _db().execute_query(
        "UPDATE public.backup_run SET status = 'failed', error = $3, updated_at = now()"
        " WHERE tenant_id = $1 AND backup_id = $2 AND status <> 'complete'",
        [tenant_id, backup_id, error],
    )


async def give_up_run(
    conn: BaseDBAsyncClient, tenant_id: int, backup_id: str, kind: str, error: str
) -> None:
    """End a run that will not be tried again: failed, with why — recorded even when no
    attempt got as far as starting (S3 unreachable from the first step). A run that
    completed meanwhile stays complete."""
    await conn.execute_query(
        "INSERT INTO public.backup_run (tenant_id, backup_id, kind, status, error)"
        " VALUES ($1, $2, $3, 'failed', $4) ON CONFLICT (tenant_id, backup_id) DO UPDATE"
        " SET status = 'failed', error = $4, updated_at = now()"
        " WHERE backup_run.status <> 'complete'",
        [tenant_id, backup_id, kind, error],
    )


async def record_backup(
    conn: BaseDBAsyncClient,
    manifest: Manifest,
    *,
    lock_mode: str | None,
    locked_until: datetime | None,
) -> None:
    """Enter a backup whose manifest is written, and end its run (idempotent)."""
    await conn.execute_query(
        "INSERT INTO public.backup (tenant_id, id, kind, prefix, schema_version, master_key_id,"
        " tables, rows, plain_bytes, stored_bytes, attachments, started_at, finished_at,"
        " lock_mode, locked_until)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::timestamptz,"
        " $13::text::timestamptz, $14, $15) ON CONFLICT (tenant_id, id) DO NOTHING",
        [
            manifest.tenant_id,
            manifest.backup_id,
            manifest.kind,
            backup_prefix(manifest.tenant, manifest.backup_id),
            manifest.schema_version,
            manifest.master_key_id,
            len(manifest.tables),
            manifest.rows,
            manifest.plain_bytes,
            manifest.stored_bytes,
            len(manifest.attachments),
            manifest.started_at,
            manifest.finished_at,
            lock_mode,
            locked_until,
        ],
    )
    await conn.execute_query(
        "INSERT INTO public.backup_run (tenant_id, backup_id, kind, status, tables, tables_done,"
        " rows_done, bytes_done) VALUES ($1, $2, $3, 'complete', $4, $4, $5, $6)"
        " ON CONFLICT (tenant_id, backup_id) DO UPDATE SET status = 'complete', error = NULL,"
        " updated_at = now(), tables = $4, tables_done = $4, rows_done = $5, bytes_done = $6",
        [
            manifest.tenant_id,
            manifest.backup_id,
            manifest.kind,
            len(manifest.tables),
            manifest.rows,
            manifest.plain_bytes,
        ],
    )


async def note_check(
    tenant_id: int, backup_id: str, *, drill: bool, error: str | None, at: datetime
) -> None:
    """Record the outcome of a verification or of a restore drill."""
    columns = ("drilled_at", "drill_error") if drill else ("verified_at", "verify_error")
    await _db().execute_query(
        f"UPDATE public.backup SET {columns[0]} = $3, {columns[1]} = $4"
        " WHERE tenant_id = $1 AND id = $2",
        [tenant_id, backup_id, at, error],
    )


async def note_locked(
    conn: BaseDBAsyncClient, tenant_id: int, backup_id: str, until: datetime
) -> None:
    """Record that a backup's objects are locked until ``until`` (never earlier than before)."""
    await conn.execute_query(
        "UPDATE public.backup SET locked_until = greatest(locked_until, $3)"
        " WHERE tenant_id = $1 AND id = $2",
        [tenant_id, backup_id, until],
    )


async def note_replicated(
    conn: BaseDBAsyncClient, tenant_id: int, backup_id: str, at: datetime
) -> None:
    await conn.execute_query(
        "UPDATE public.backup SET replicated_at = $3 WHERE tenant_id = $1 AND id = $2",
        [tenant_id, backup_id, at],
    )


async def forget_backup(conn: BaseDBAsyncClient, tenant_id: int, backup_id: str) -> None:
    """Remove a pruned backup from the catalogue (its objects are gone)."""
    await conn.execute_query(
        "DELETE FROM public.backup WHERE tenant_id = $1 AND id = $2", [tenant_id, backup_id]
    )
