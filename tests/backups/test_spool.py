"""Unpacking a backup for a restore: every table and file checked against the manifest
before anything is loaded; a cut or damaged object is refused by name."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from dangan.audit.actions import ActionLog
from dangan.backups.errors import BackupError
from dangan.backups.manifest import backup_prefix
from dangan.backups.reader import open_backup
from dangan.backups.slots import backup_id
from dangan.backups.spool import put_back_files, spooled
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from dangan.tenants.scope import TenantRef
from tests.backups.conftest import fill

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def plain(settings: Settings, endpoints: Endpoints) -> BackupStore:
    """A bucket without object lock, where a test may damage a backup's objects."""
    client = s3_client(endpoints)
    bucket = f"{settings.s3_bucket}-plain-backups"
    await asyncio.to_thread(ensure_bucket, client, bucket)
    return BackupStore(ObjectStore(client, bucket), lock_mode=None, lock_days=1)


async def test_a_backup_unpacks_whole_and_puts_missing_files_back(
    settings: Settings, plain: BackupStore, objects: ObjectStore, tenant: TenantRef, log: ActionLog
) -> None:
    filled = await fill(tenant, objects, customers=3, files=2)
    backup = backup_id("manual", NOW)
    await run_backup(settings, plain, objects, tenant, backup, "manual", log)
    opened = await open_backup(settings, plain, tenant.slug, backup)
    gone = sorted(filled.files)[0]
    await objects.remove(gone)

    async with spooled(plain.objects, opened) as spool:
        assert set(spool.tables) == {t.name for t in opened.manifest.tables}
        customers = b"".join([chunk async for chunk in spool.read_table("customer")])
        assert customers.count(b"\n") == 3
        assert await put_back_files(objects, opened, spool) == (1, 1)
        root = spool.root
    assert not root.exists()
    assert await objects.get_bytes(gone) == filled.files[gone]
    info = await objects.stat(gone)
    assert info is not None and info.content_type == "application/pdf"


@pytest.mark.parametrize("damage", ["cut", "flip", "gone"])
async def test_a_damaged_backup_is_refused_before_anything_is_loaded(
    settings: Settings,
    plain: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
    damage: str,
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    backup = backup_id("manual", NOW)
    await run_backup(settings, plain, objects, tenant, backup, "manual", log)
    opened = await open_backup(settings, plain, tenant.slug, backup)
    key = backup_prefix(tenant.slug, backup) + "data"
    sealed = await plain.objects.get_bytes(key)
    if damage == "gone":
        await plain.objects.remove(key)
        expected = "is missing from the bucket"
    else:
        broken = sealed[: len(sealed) - 7] if damage == "cut" else bytearray(sealed)
        if damage == "flip":
            broken[len(broken) // 2] ^= 0x01
        await plain.objects.put_bytes(key, bytes(broken), "application/octet-stream")
        expected = "truncated" if damage == "cut" else "does not open"

    with pytest.raises(BackupError, match=expected):
        async with spooled(plain.objects, opened):
            pass
