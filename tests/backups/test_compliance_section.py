"""The compliance report's backups section reads the platform catalogue for its own
tenant only: backups made, failed runs, verifications, the last good backup's age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import fail_run, note_check, start_run
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.services.compliance.backups import BackupSection, backup_section
from dangan.services.compliance.period import Period
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant
from tests.support.tenants import drop_tenant


async def _section(tenant: TenantRef, period: Period) -> BackupSection:
    return await run_in_tenant(tenant, lambda: backup_section(period))


async def test_the_section_counts_this_tenants_backups_and_failures_only(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    now = datetime.now(UTC)
    period = Period(now - timedelta(days=1), now + timedelta(hours=1))
    made = backup_id("manual", now)
    await run_backup(settings, backups, objects, tenant, made, "manual", log)
    await note_check(tenant.id, made, drill=False, error=None, at=now)
    await start_run(tenant.id, "m20000101T0000", "manual")
    await fail_run(tenant.id, "m20000101T0000", "object storage refused: AccessDenied")

    other = await create_tenant(tenant.slug + "_o", "Other Ltd")
    try:
        await run_backup(settings, backups, objects, other, made, "manual", log)
        await start_run(other.id, "m20000101T0001", "manual")
        await fail_run(other.id, "m20000101T0001", "another tenant's failure")
        section = await _section(tenant, period)
        empty = await _section(other, Period(now - timedelta(days=9), now - timedelta(days=8)))
    finally:
        await drop_tenant(other.slug)

    assert section.catalogued and (section.made, section.failed_runs) == (1, 1)
    assert section.last_failure == "object storage refused: AccessDenied"
    assert (section.verified, section.verify_failed, section.drilled) == (1, 0, 0)
    assert section.last_good_id == made and section.last_good_age_hours is not None
    assert "1 backup run(s) failed" in section.note
    table = section.tables()[0]
    assert ["backups made (备份次数)", 1] in table.rows
    # Before the other tenant's backup existed: nothing, and nothing of anyone else's.
    assert (empty.made, empty.failed_runs, empty.last_good_id) == (0, 0, None)
    assert "no backup of this tenant" in empty.note
