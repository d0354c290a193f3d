"""Taking a backup of one tenant (DESIGN.md, "Backups: why not pg_dump").

1. The tables are read in one snapshot (:func:`take_snapshot`) straight into one sealed
   object, ``data``, uploaded as it is produced (:class:`SealedUpload`).
2. The files of the attachments the snapshot holds as stored go into a second sealed
   object, ``attachments``.
3. Both are locked (object lock), then the manifest is written, locked, last.
4. The backup enters the catalogue, with a ``backup.run`` audit event, in one transaction.

A crash before 3 leaves objects without a manifest (nothing lists or restores them; the
rerun of the slot writes over them and pruning removes them); a crash between 3 and 4
leaves a manifest the rerun (or the nightly prune) adopts. A rerun of a finished slot
does nothing.

5. With a replica endpoint configured, the backup is copied there
   (:func:`dangan.backups.replica.replicate_backup`); a failure there leaves the backup
   as it is, recorded, for the nightly run to copy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from minio.error import S3Error
from tortoise.transactions import in_transaction

from dangan.audit.actions import ActionLog
from dangan.backups import framing
from dangan.backups.catalogue import (
    BackupRecord,
    fail_run,
    find_backup,
    note_progress,
    record_backup,
    start_run,
)
from dangan.backups.errors import BackupBusy, BackupError
from dangan.backups.keys import DataKey, tenant_data_key
from dangan.backups.manifest import (
    AttachmentEntry,
    Manifest,
    ObjectEntry,
    TableEntry,
    backup_prefix,
    manifest_key,
)
from dangan.backups.reader import open_backup
from dangan.backups.replica import replicate_backup
from dangan.backups.snapshot import TableCopy, TableSink, schema_relations, take_snapshot
from dangan.backups.store import BackupStore
from dangan.backups.transient import describe
from dangan.backups.upload import SealedUpload, Uploaded
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, TenantSession, tenant_part

_PIECE = 1 << 20


@dataclass(frozen=True)
class BackupProgress:
    tables_done: int
    tables: int
    rows: int
    bytes: int
    stage: str


Progress = Callable[[BackupProgress], Awaitable[None]]


@dataclass(frozen=True)
class BackupOutcome:
    record: BackupRecord
    made: bool  # False: the slot's backup was already there


def lock_key(tenant: TenantRef) -> int:
    return zlib.crc32(f"dangan-backup:{tenant.id}".encode())


class _FramedSink(TableSink):
    """A table's COPY bytes, counted and checksummed, into the ``data`` upload."""

    def __init__(self, table: str, upload: SealedUpload) -> None:
        super().__init__(table)
        self.upload = upload

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return  # a chunk of length 0 would read back as the table's end
        await super().write(chunk)
        await self.upload.write(framing.chunk_header(len(chunk)))
        await self.upload.write(chunk)

    async def close(self) -> TableCopy:
        await self.upload.write(framing.END)
        return await super().close()


class _Teller:
    """Tables done, told (to the catalogue and the caller's progress) by a task of its
    own, so that the snapshot never waits for a progress write: a table is only handed
    over; what piled up meanwhile is told in order, with one catalogue write."""

    def __init__(
        self, tell: Callable[[list[TableCopy]], Awaitable[None]], context: contextvars.Context
    ) -> None:
        self._tell = tell
        self._pending: list[TableCopy] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), context=context)

    def add(self, copy: TableCopy) -> None:
        self._pending.append(copy)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._tell(batch)
            if self._closing and not self._pending:
                return

    async def close(self) -> None:
        """Wait until every table handed over is told (raises what telling raised)."""
        self._closing = True
        self._wake.set()
        await self._task

    async def cancel(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


async def run_backup(
    settings: Settings,
    store: BackupStore,
    source: ObjectStore,
    tenant: TenantRef,
    backup: str,
    kind: str,
    log: ActionLog,
    progress: Progress | None = None,
) -> BackupOutcome:
    """Make (or find) ``tenant``'s backup ``backup``; see the module's steps."""
    existing = await find_backup(tenant.id, backup)
    if existing is not None:
        return BackupOutcome(existing, made=False)
    adopted = await adopt_backup(settings, store, tenant, backup)
    if adopted is not None:
        return BackupOutcome(adopted, made=False)
    await start_run(tenant.id, backup, kind)
    try:
        record = await _take(settings, store, source, tenant, backup, kind, log, progress)
    except BackupBusy:
        raise
    except Exception as exc:
        await fail_run(tenant.id, backup, describe(exc))
        raise
    return BackupOutcome(record, made=True)


async def adopt_backup(
    settings: Settings, store: BackupStore, tenant: TenantRef, backup: str
) -> BackupRecord | None:
    """Enter in the catalogue a backup whose manifest a run wrote before it died (the
    rerun of its slot, and pruning, call this); None if it has no manifest. A manifest
    that does not open (altered, or under an unknown master key) raises BackupError."""
    info = await store.objects.stat(manifest_key(tenant.slug, backup))
    if info is None:
        return None
    manifest = (await open_backup(settings, store, tenant.slug, backup)).manifest
    locked_until = datetime.fromisoformat(info.locked_until) if info.locked_until else None
    async with in_transaction() as conn:
        await record_backup(conn, manifest, lock_mode=info.lock_mode, locked_until=locked_until)
    return await find_backup(tenant.id, backup)


async def _take(
    settings: Settings,
    store: BackupStore,
    source: ObjectStore,
    tenant: TenantRef,
    backup: str,
    kind: str,
    log: ActionLog,
    progress: Progress | None,
) -> BackupRecord:
    clock = time.monotonic()
    started = datetime.now(UTC)
    data_key = await tenant_data_key(settings, tenant)
    prefix = backup_prefix(tenant.slug, backup)
    attachments: list[tuple[str, int, str, str]] = []
    counted = {"tables": 0, "rows": 0, "bytes": 0}

    async def first(conn: TenantSession) -> None:
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(tenant)):
            raise BackupBusy(f"a backup of {tenant.slug} is already running")
        counted["tables"] = len((await schema_relations(conn))[0])
        rows = await conn.fetch(
            "SELECT object_key, size_bytes, sha256, content_type FROM attachment"
            " WHERE status = 'STORED' ORDER BY object_key"
        )
        attachments.extend(
            (r["object_key"], r["size_bytes"], r["sha256"], r["content_type"]) for r in rows
        )

    done: list[TableCopy] = []

    async def tell(copies: list[TableCopy]) -> None:
        for copy in copies:
            done.append(copy)
            counted["rows"] += copy.rows
            counted["bytes"] += copy.bytes
            if progress is not None:
                await progress(
                    BackupProgress(
                        len(done), counted["tables"], counted["rows"], counted["bytes"], copy.table
                    )
                )
        await note_progress(
            tenant.id,
            backup,
            tables_done=len(done),
            tables=counted["tables"],
            rows=counted["rows"],
            size=counted["bytes"],
        )

    # Progress is written outside the snapshot's (read-only) transaction: in the context
    # as it was before it began (Tortoise finds its transaction through a context var).
    told = _Teller(tell, contextvars.copy_context())
    data = SealedUpload(store.objects, prefix + "data", data_key.key)

    async def on_table(copy: TableCopy) -> None:
        told.add(copy)

    async def open_table(table: str) -> TableSink:
        await data.write(framing.start(table))
        return _FramedSink(table, data)

    try:
        snapshot = await take_snapshot(tenant, open_table, on_table, first=first)
        data_object = await data.finish()
        await told.close()
    except BaseException:
        await told.cancel()
        await data.abort()
        raise
    if snapshot.schema_version is None:
        raise BackupError(f"{tenant.slug}'s schema has no recorded version")
    files, missing, files_object = await _attachments(
        store, source, prefix, data_key, attachments, progress, counted
    )
    now = datetime.now(UTC)
    until = store.lock_until(now)
    if store.lock_mode and until is not None:
        for uploaded in (data_object, files_object):
            await store.objects.extend_lock(
                uploaded.key, uploaded.version_id, mode=store.lock_mode, until=until
            )
    manifest = Manifest(
        tenant=tenant.slug,
        tenant_id=tenant.id,
        backup_id=backup,
        kind=kind,
        schema_version=snapshot.schema_version,
        master_key_id=data_key.master_key_id,
        wrapped_key=data_key.wrapped.hex(),
        started_at=started.isoformat(),
        finished_at=now.isoformat(),
        duration_ms=int((time.monotonic() - clock) * 1000),
        tables=[TableEntry(t.table, t.rows, t.bytes, t.sha256) for t in snapshot.tables],
        sequences={name: [value, called] for name, (value, called) in snapshot.sequences.items()},
        attachments=files,
        missing_attachments=missing,
        objects={
            "data": _entry(data_object),
            "attachments": _entry(files_object),
        },
    ).signed(data_key.key)
    key = manifest_key(tenant.slug, backup)
    if store.lock_mode and until is not None:
        await store.objects.put_locked(
            key, manifest.encode(), "application/json", mode=store.lock_mode, until=until
        )
    else:
        await store.objects.put_bytes(key, manifest.encode(), "application/json")
    async with in_transaction() as conn:
        await record_backup(conn, manifest, lock_mode=store.lock_mode, locked_until=until)
        async with tenant_part(conn, tenant):
            await log.record(
                "backup.run",
                details={
                    "backup": backup,
                    "kind": kind,
                    "tables": len(manifest.tables),
                    "rows": manifest.rows,
                    "attachments": len(files),
                    "missingAttachments": len(missing),
                    "storedBytes": manifest.stored_bytes,
                },
                request_id=backup,
            )
    if store.replica is not None:
        # The copy on the second endpoint: its failure is recorded, never the backup's.
        await replicate_backup(store, tenant, manifest, data_key.key, log, until=until)
    record = await find_backup(tenant.id, backup)
    assert record is not None
    return record


def _entry(uploaded: Uploaded) -> ObjectEntry:
    return ObjectEntry(uploaded.key, uploaded.version_id, uploaded.stored_bytes)


async def _attachments(
    store: BackupStore,
    source: ObjectStore,
    prefix: str,
    data_key: DataKey,
    wanted: list[tuple[str, int, str, str]],
    progress: Progress | None,
    counted: dict[str, int],
) -> tuple[list[AttachmentEntry], list[str], Uploaded]:
    """The stored attachments' files, sealed into one object. A file missing from the
    bucket, or whose content no longer matches its recorded SHA-256, is listed as
    missing (the backup goes on: its rows are still worth keeping)."""
    upload = SealedUpload(store.objects, prefix + "attachments", data_key.key)
    files: list[AttachmentEntry] = []
    missing: list[str] = []
    try:
        for number, (key, size, sha256, content_type) in enumerate(wanted, start=1):
            content = await _read_file(source, key)
            if content is None or _sha256(content) != sha256 or len(content) != size:
                missing.append(key)
                continue
            await upload.write(framing.start(key))
            for offset in range(0, len(content), _PIECE):
                await upload.write(framing.chunk(content[offset : offset + _PIECE]))
            await upload.write(framing.END)
            files.append(AttachmentEntry(key, len(content), sha256, content_type))
            counted["bytes"] += len(content)
            if progress is not None:
                await progress(
                    BackupProgress(
                        counted["tables"],
                        counted["tables"],
                        counted["rows"],
                        counted["bytes"],
                        f"attachments {number}/{len(wanted)}",
                    )
                )
        uploaded = await upload.finish()
    except BaseException:
        await upload.abort()
        raise
    return files, missing, uploaded


async def _read_file(source: ObjectStore, key: str) -> bytes | None:
    try:
        return await source.get_bytes(key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return None
        raise


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
