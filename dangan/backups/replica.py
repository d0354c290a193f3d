"""The replica: a copy of every finished backup on a second S3 endpoint
(``DANGAN_BACKUP_REPLICA_*``), under the same keys.

The sealed objects are copied as they are, streamed (read from one endpoint while they
are written to the other, a part at a time, never held whole), at the versions the
manifest names; then, last, the manifest, which names the replica's own versions and is
signed again under the tenant's data key. So a replica is a complete backup on its own:
the reader, verify and restore work against the replica bucket unchanged, and a replica
without its manifest (a copy cut short) never looks complete. In a bucket with object
lock the copies are locked like the originals (same mode, at least as long).

A failed copy never fails the backup: it is logged and recorded (a ``backup.replicate``
event with its error), ``public.backup.replicated_at`` stays empty, and the nightly run
(:func:`replicate_pending`) copies the kept backups still without one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, cast

import structlog
from minio.error import S3Error
from tortoise.transactions import in_transaction

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import list_backups, note_replicated
from dangan.backups.errors import BackupError
from dangan.backups.keeping import KeepPolicy, choose
from dangan.backups.manifest import Manifest, ObjectEntry, manifest_key
from dangan.backups.reader import open_backup
from dangan.backups.store import BackupStore
from dangan.backups.transient import describe
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, tenant_part

log = structlog.get_logger("dangan.backups")
ACTION = "backup.replicate"


@dataclass(frozen=True)
class Replicated:
    backup: str
    objects: int  # the sealed objects and the manifest
    bytes: int


@dataclass(frozen=True)
class ReplicaOutcome:
    backup: str
    copied: Replicated | None
    error: str | None = None


async def replicate(
    store: BackupStore, manifest: Manifest, data_key: bytes, *, until: datetime | None
) -> Replicated:
    """Copy the backup ``manifest`` describes to ``store.replica``: its sealed objects,
    locked until ``until`` (the originals' lock) if the replica bucket has object lock,
    then its manifest, naming the copies. A rerun copies again (new versions)."""
    replica = store.replica
    if replica is None:
        raise BackupError("no replica endpoint is configured")
    copies: dict[str, ObjectEntry] = {}
    for name, entry in manifest.objects.items():
        version = await asyncio.to_thread(_copy, store.objects, replica, entry)
        copies[name] = ObjectEntry(entry.key, version, entry.stored_bytes)
    mode = store.replica_lock_mode
    if mode is not None and until is not None:
        for copy in copies.values():
            await replica.extend_lock(copy.key, copy.version_id, mode=mode, until=until)
    body = dataclasses.replace(manifest, objects=copies).signed(data_key).encode()
    key = manifest_key(manifest.tenant, manifest.backup_id)
    if mode is not None and until is not None:
        await replica.put_locked(key, body, "application/json", mode=mode, until=until)
    else:
        await replica.put_bytes(key, body, "application/json")
    size = sum(copy.stored_bytes for copy in copies.values()) + len(body)
    return Replicated(manifest.backup_id, len(copies) + 1, size)


def _copy(source: ObjectStore, target: ObjectStore, entry: ObjectEntry) -> str | None:
    """Stream one object version from ``source`` to ``target`` (blocking); the new
    version's id. minio reads the stream a part at a time (multipart past 5 MiB)."""
    found = source.client.stat_object(source.bucket, entry.key, version_id=entry.version_id)
    if found.size != entry.stored_bytes:
        raise BackupError(
            f"{entry.key} holds {found.size} bytes, its manifest says {entry.stored_bytes}"
        )
    response = source.client.get_object(source.bucket, entry.key, version_id=entry.version_id)
    try:
        written = target.client.put_object(
            target.bucket,
            entry.key,
            cast(BinaryIO, response),  # read a part at a time
            entry.stored_bytes,
            content_type=found.content_type or "application/octet-stream",
        )
    finally:
        response.close()
        response.release_conn()
    return written.version_id


async def replicate_backup(
    store: BackupStore,
    tenant: TenantRef,
    manifest: Manifest,
    data_key: bytes,
    actions: ActionLog,
    *,
    until: datetime | None,
) -> ReplicaOutcome:
    """:func:`replicate`, then ``replicated_at`` and a ``backup.replicate`` event in one
    transaction. Never raises for a failed copy: it is logged, recorded as a
    ``backup.replicate`` event with its error, and returned."""
    try:
        copied = await replicate(store, manifest, data_key, until=until)
        async with in_transaction() as conn:
            await note_replicated(conn, tenant.id, manifest.backup_id, datetime.now(UTC))
            async with tenant_part(conn, tenant):
                await actions.record(
                    ACTION,
                    details={
                        "backup": manifest.backup_id,
                        "bucket": store.replica.bucket if store.replica else None,
                        "objects": copied.objects,
                        "bytes": copied.bytes,
                    },
                    request_id=manifest.backup_id,
                )
    except Exception as exc:
        reason = _reason(exc)
        log.warning(
            "backup not replicated", tenant=tenant.slug, backup=manifest.backup_id, error=reason
        )
        await actions.record_failure(
            tenant,
            ACTION,
            exc,
            details={"backup": manifest.backup_id, "error": reason},
            request_id=manifest.backup_id,
        )
        return ReplicaOutcome(manifest.backup_id, None, reason)
    return ReplicaOutcome(manifest.backup_id, copied)


Progress = Callable[[int, int], Awaitable[None]]


async def replicate_pending(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    actions: ActionLog,
    now: datetime,
    progress: Progress | None = None,
) -> list[ReplicaOutcome]:
    """Copy the tenant's backups that the keep-policy keeps and the replica does not
    have yet (a failed or cut-short copy), newest first; ``progress(done, total)``
    after each. Nothing to do without a replica endpoint."""
    if store.replica is None:
        return []
    records = await list_backups(tenant.id, limit=None)
    kept = choose(records, KeepPolicy.from_settings(settings), now).keep
    pending = [r for r in records if r.replicated_at is None and r.id in kept]
    outcomes: list[ReplicaOutcome] = []
    for record in pending:
        try:
            opened = await open_backup(settings, store, tenant.slug, record.id)
        except (BackupError, S3Error) as exc:
            reason = _reason(exc)
            await actions.record_failure(
                tenant, ACTION, exc, details={"backup": record.id, "error": reason}
            )
            outcomes.append(ReplicaOutcome(record.id, None, reason))
        else:
            outcomes.append(
                await replicate_backup(
                    store,
                    tenant,
                    opened.manifest,
                    opened.data_key,
                    actions,
                    until=record.locked_until,
                )
            )
        if progress is not None:
            await progress(len(outcomes), len(pending))
    return outcomes


def _reason(exc: BaseException) -> str:
    """Why a copy failed, in the words of :func:`describe`, naming the replica (whose
    failures would otherwise read like the main bucket's "object storage …")."""
    return describe(exc).replace("object storage", "the replica", 1)
