"""A tenant's backup: one consistent snapshot, sealed into S3, manifest last, in the
catalogue; every count and checksum verifiable; a rerun of its slot makes nothing new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import find_run, list_backups
from dangan.backups.errors import BackupError
from dangan.backups.manifest import backup_prefix, manifest_key
from dangan.backups.reader import open_backup, verify_backup
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import BackupProgress, run_backup
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.backups.conftest import fill

NOW = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


async def _counts(tenant: TenantRef, tables: list[str]) -> dict[str, int]:
    async def count() -> dict[str, int]:
        conn = raw_connection()
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}

    return await run_in_tenant(tenant, count)


async def test_a_backup_holds_every_table_and_file_and_verifies(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    filled = await fill(tenant, objects, customers=12, files=3)
    seen: list[BackupProgress] = []

    async def progress(step: BackupProgress) -> None:
        seen.append(step)

    backup = backup_id("manual", NOW)
    outcome = await run_backup(settings, backups, objects, tenant, backup, "manual", log, progress)

    assert outcome.made
    record = outcome.record
    assert (record.tenant, record.id, record.kind) == (tenant.slug, backup, "manual")
    assert record.attachments == 3
    opened = await open_backup(settings, backups, tenant.slug, backup)
    manifest = opened.manifest
    counts = await _counts(tenant, [t.name for t in manifest.tables])
    # The backup.run event is written after the snapshot: one more than the backup holds.
    counts["audit_event"] -= 1
    assert {t.name: t.rows for t in manifest.tables} == counts
    assert counts["customer"] == 12
    assert record.rows == manifest.rows
    assert sorted(a.key for a in manifest.attachments) == sorted(filled.files)
    assert manifest.missing_attachments == []
    assert "audit_event_seq_seq" in manifest.sequences or manifest.sequences
    # Progress went table by table, then through the files.
    assert [s.tables_done for s in seen[: record.tables]] == list(range(1, record.tables + 1))
    assert seen[-1].stage == "attachments 3/3"
    run = await find_run(tenant.id, backup)
    assert run is not None and (run.status, run.attempts, run.tables_done) == (
        "complete",
        1,
        record.tables,
    )

    report = await verify_backup(settings, backups, tenant.slug, backup)
    assert report.ok, report.problems
    assert (report.tables, report.attachments) == (record.tables, 3)

    # The objects are locked and the manifest is the only plain-text one.
    if backups.lock_mode:
        for name in ("data", "attachments", "manifest.json"):
            info = await backups.objects.stat(backup_prefix(tenant.slug, backup) + name)
            assert info is not None and info.lock_mode == backups.lock_mode
    sealed = await backups.objects.get_bytes(backup_prefix(tenant.slug, backup) + "data")
    assert sealed.startswith(b"DGBK") and f"{tenant.slug}备份".encode() not in sealed

    async def events() -> list[str]:
        rows = await raw_connection().fetch(
            "SELECT variables->>'backup' AS b FROM audit_event WHERE 'backup.run' = ANY(actions)"
        )
        return [row["b"] for row in rows]

    assert await run_in_tenant(tenant, events) == [backup]
    assert [b.id for b in await list_backups(tenant.id)] == [backup]


async def test_a_rerun_of_the_slot_makes_no_second_backup(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    backup = backup_id("scheduled", NOW)
    first, second = await asyncio.gather(
        run_backup(settings, backups, objects, tenant, backup, "scheduled", log),
        run_backup(settings, backups, objects, tenant, backup, "scheduled", log),
        return_exceptions=True,
    )
    made = [o for o in (first, second) if not isinstance(o, BaseException) and o.made]
    assert len(made) == 1, (first, second)
    again = await run_backup(settings, backups, objects, tenant, backup, "scheduled", log)
    assert not again.made and again.record.finished_at == made[0].record.finished_at
    manifests = [
        v
        for v in await backups.objects.versions(backup_prefix(tenant.slug, backup))
        if v.key.endswith("manifest.json")
    ]
    assert len(manifests) == 1
    assert len(await list_backups(tenant.id)) == 1


async def test_rows_committed_during_the_snapshot_stay_out(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
    endpoints: Endpoints,
) -> None:
    await fill(tenant, objects, customers=3, files=0)
    writer = await asyncpg.connect(endpoints.database_url)
    await writer.execute(f'SET ROLE "{tenant.role_name}"')
    wrote: list[str] = []

    async def progress(step: BackupProgress) -> None:
        if not wrote:  # after the first table, another connection commits a department
            await writer.execute(
                f'INSERT INTO "{tenant.schema_name}".department (name) VALUES ($1)', "Late"
            )
            wrote.append(step.stage)

    try:
        before = await _counts(tenant, ["department"])
        backup = backup_id("manual", NOW)
        await run_backup(settings, backups, objects, tenant, backup, "manual", log, progress)
    finally:
        await writer.close()
    assert wrote and wrote[0] < "department"  # the insert happened before department was read
    manifest = (await open_backup(settings, backups, tenant.slug, backup)).manifest
    rows = {t.name: t.rows for t in manifest.tables}
    assert rows["department"] == before["department"]
    assert (await _counts(tenant, ["department"]))["department"] == before["department"] + 1


async def test_opening_fails_clearly_without_the_manifest_or_with_a_wrong_key(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    await fill(tenant, objects, customers=1, files=0)
    backup = backup_id("manual", NOW)
    await run_backup(settings, backups, objects, tenant, backup, "manual", log)

    with pytest.raises(BackupError, match="has no manifest"):
        await open_backup(settings, backups, tenant.slug, "m20260101T0000")
    with pytest.raises(BackupError, match="has no manifest"):
        await open_backup(settings, backups, "someone_else", backup)
    stranger = settings.model_copy(update={"secret_key": "another-installation-" + "x" * 40})
    with pytest.raises(BackupError, match="wrong master key"):
        await open_backup(stranger, backups, tenant.slug, backup)
    rotated = settings.model_copy(
        update={"backup_master_key": "A" * 43 + "=", "backup_master_key_id": "k2"}
    )
    with pytest.raises(BackupError, match="master key 'derived-from-secret-key'"):
        await open_backup(rotated, backups, tenant.slug, backup)
    assert manifest_key(tenant.slug, backup).endswith("/manifest.json")
