"""A backup from S3 restored whole: over its tenant after a table is dropped by hand
(every row back, the audit trail still verifying), into a new tenant, and as a drill
whose outcome is recorded; a backup of another tenant of the same name is refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import CheckpointStore, write_checkpoint
from dangan.audit.verify import verify_tenant
from dangan.backups.catalogue import find_backup
from dangan.backups.errors import BackupError
from dangan.backups.manifest import backup_prefix
from dangan.backups.reader import open_backup
from dangan.backups.restore import drill_backup, restore_as_new, restore_backup
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.devstack import Endpoints
from dangan.services.errors import DanganError
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.backups.filled import Filled
from tests.support.tenants import drop_tenant

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


async def _counts(tenant: TenantRef) -> dict[str, int]:
    async def count() -> dict[str, int]:
        conn = raw_connection()
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {
            t["tablename"]: await conn.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
            for t in tables
        }

    return await run_in_tenant(tenant, count)


async def test_a_dropped_table_comes_back_with_every_row(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    filled: Filled,
    log: ActionLog,
    store: CheckpointStore,
) -> None:
    tenant = filled.ref
    backup = backup_id("manual", NOW)
    await run_backup(settings, backups, objects, tenant, backup, "manual", log)
    manifest = (await open_backup(settings, backups, tenant.slug, backup)).manifest
    await write_checkpoint(tenant, store)
    before = await _counts(tenant)
    assert before["contact_person"] > 0

    async def drop() -> None:
        await raw_connection().execute("DROP TABLE contact_person CASCADE")

    await run_in_tenant(tenant, drop)
    steps: list[str] = []

    async def step(stage: str, done: int, total: int) -> None:
        steps.append(stage)

    report = await restore_backup(
        settings, backups, objects, tenant, backup, log, keep_days=7, step=step
    )

    live = await find_tenant(tenant.slug)
    assert live is not None and live.schema_name != tenant.schema_name
    assert report.retired is not None and report.retired.schema_name == tenant.schema_name
    after = await _counts(live)
    backed = {t.name: t.rows for t in manifest.tables}
    assert after["contact_person"] == backed["contact_person"] == before["contact_person"]
    for table, rows in backed.items():
        if not table.startswith(("audit_", "alert", "alarm_", "member", "partner_app")):
            assert after[table] == rows, table
    # The audit trail was carried over, so it and its checkpoint still verify; the
    # restore itself is its newest event.
    chain = await verify_tenant(live, store)
    assert chain.broken is None, chain.broken
    assert after["audit_event"] == before["audit_event"] + 1
    assert steps[0].startswith("downloading") and steps[-1].startswith("loading")
    assert report.tables == len(manifest.tables) and report.rows == manifest.rows


async def test_a_drill_is_recorded_and_a_damaged_backup_fails_it(
    settings: Settings,
    endpoints: Endpoints,
    backups: BackupStore,
    objects: ObjectStore,
    filled: Filled,
    log: ActionLog,
) -> None:
    tenant = filled.ref
    backup = backup_id("scheduled", NOW)
    await run_backup(settings, backups, objects, tenant, backup, "scheduled", log)
    report = await drill_backup(settings, backups, tenant, backup, log)
    record = await find_backup(tenant.id, backup)
    assert record is not None and record.drilled_at is not None and record.drill_error is None
    assert report.retired is None and (await find_tenant(tenant.slug)) == tenant

    client = s3_client(endpoints)
    bucket = f"{settings.s3_bucket}-plain-backups"
    await asyncio.to_thread(ensure_bucket, client, bucket)
    plain = BackupStore(ObjectStore(client, bucket), lock_mode=None, lock_days=1)
    damaged = backup_id("manual", NOW)
    await run_backup(settings, plain, objects, tenant, damaged, "manual", log)
    key = backup_prefix(tenant.slug, damaged) + "data"
    sealed = bytearray(await plain.objects.get_bytes(key))
    sealed[-40] ^= 0x10
    await plain.objects.put_bytes(key, bytes(sealed), "application/octet-stream")
    with pytest.raises(DanganError, match="does not open"):
        await drill_backup(settings, plain, tenant, damaged, log)
    record = await find_backup(tenant.id, damaged)
    assert record is not None and record.drill_error and "does not open" in record.drill_error

    async def drills() -> list[bool]:
        rows = await raw_connection().fetch(
            "SELECT variables->>'ok' AS ok FROM audit_event"
            " WHERE 'backup.drill' = ANY(actions) ORDER BY seq"
        )
        return [row["ok"] == "true" for row in rows]

    assert await run_in_tenant(tenant, drills) == [True, False]


async def test_restoring_into_a_new_tenant_leaves_the_live_one_alone(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    filled: Filled,
    log: ActionLog,
    slugs: object,
) -> None:
    tenant = filled.ref
    backup = backup_id("manual", NOW)
    await run_backup(settings, backups, objects, tenant, backup, "manual", log)
    assert callable(slugs)
    copy_slug = slugs()
    report = await restore_as_new(settings, backups, objects, tenant, backup, copy_slug, log)
    copy = await find_tenant(copy_slug)
    assert copy is not None and report.tenant == copy_slug and report.retired is None
    assert (await _counts(copy))["customer"] == (await _counts(tenant))["customer"]
    assert await find_tenant(tenant.slug) == tenant


async def test_a_backup_of_an_earlier_tenant_of_the_same_name_is_refused(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    slugs: object,
) -> None:
    assert callable(slugs)
    slug = slugs()
    first = await create_tenant(slug, "First Ltd")
    backup = backup_id("manual", NOW)
    await run_backup(settings, backups, objects, first, backup, "manual", log)
    await drop_tenant(slug)
    second = await create_tenant(slug, "Second Ltd")
    with pytest.raises(BackupError, match="restore it with --as NEW_SLUG"):
        await restore_backup(settings, backups, objects, second, backup, log, keep_days=1)
    assert await find_tenant(slug) == second
