"""Backups made by hand for the pruning tests: a few bytes per object, a manifest signed
under the tenant's real data key, a catalogue row with any ``finished_at`` (pruning
reads the calendar, not the content), locked as long as a test wants (seconds)."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from dangan.backups.catalogue import BackupRecord, find_backup, record_backup
from dangan.backups.keys import tenant_data_key
from dangan.backups.manifest import Manifest, ObjectEntry, backup_prefix, manifest_key
from dangan.backups.store import BackupStore
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.audit.events import events_of


def put(objects: ObjectStore, key: str, content: bytes) -> str | None:
    """Write an object (blocking); its version id."""
    written = objects.client.put_object(objects.bucket, key, io.BytesIO(content), len(content))
    return written.version_id


async def fabricate(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    backup: str,
    finished_at: datetime,
    *,
    locked_for: timedelta | None = None,
    catalogued: bool = True,
    data: bytes | None = None,
) -> Manifest:
    """A complete backup ``backup`` finished at ``finished_at``; its objects locked for
    ``locked_for`` from now (None: not locked); in the catalogue unless told not; its
    ``data`` object holds ``data`` if given (a few bytes otherwise)."""
    data_key = await tenant_data_key(settings, tenant)
    prefix = backup_prefix(tenant.slug, backup)
    until = datetime.now(UTC) + locked_for if locked_for is not None else None
    entries = {}
    for name in ("data", "attachments"):
        content = f"{name} of {tenant.slug}/{backup} {uuid.uuid4()}".encode()
        if name == "data" and data is not None:
            content = data
        version = await asyncio.to_thread(put, store.objects, prefix + name, content)
        if until is not None and store.lock_mode:
            await store.objects.extend_lock(
                prefix + name, version, mode=store.lock_mode, until=until
            )
        entries[name] = ObjectEntry(prefix + name, version, len(content))
    manifest = Manifest(
        tenant=tenant.slug,
        tenant_id=tenant.id,
        backup_id=backup,
        kind="manual" if backup.startswith("m") else "scheduled",
        schema_version=tenant.schema_version,
        master_key_id=data_key.master_key_id,
        wrapped_key=data_key.wrapped.hex(),
        started_at=(finished_at - timedelta(minutes=1)).isoformat(),
        finished_at=finished_at.isoformat(),
        duration_ms=60_000,
        tables=[],
        sequences={},
        attachments=[],
        missing_attachments=[],
        objects=entries,
    ).signed(data_key.key)
    key = manifest_key(tenant.slug, backup)
    if until is not None and store.lock_mode:
        await store.objects.put_locked(
            key, manifest.encode(), "application/json", mode=store.lock_mode, until=until
        )
    else:
        await store.objects.put_bytes(key, manifest.encode(), "application/json")
    if catalogued:
        async with in_transaction() as conn:
            await record_backup(
                conn, manifest, lock_mode=store.lock_mode if until else None, locked_until=until
            )
    return manifest


async def record(tenant: TenantRef, backup: str) -> BackupRecord | None:
    return await find_backup(tenant.id, backup)


async def action_events(tenant: TenantRef, action: str) -> list[dict[str, Any]]:
    """The tenant's events of ``action``, oldest first (jsonb decoded)."""
    rows = await run_in_tenant(
        tenant,
        lambda: raw_connection().fetch(
            "SELECT request_id FROM audit_event WHERE $1 = ANY(actions) ORDER BY seq", action
        ),
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:  # a request id may have other events too (backup.run, backup.replicate)
        for event in await events_of(tenant, row["request_id"]):
            if action in event["actions"]:
                found[event["seq"]] = event
    return [found[seq] for seq in sorted(found)]
