"""The daily drill job drills each tenant's newest backup when it is due, once."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import find_backup
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef
from dangan.workers.restores import restore_drills
from tests.backups.conftest import fill


async def test_the_newest_backup_is_drilled_once(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
    redis: Redis,
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    older = backup_id("manual", datetime(2026, 11, 20, tzinfo=UTC))
    newest = backup_id("manual", datetime(2026, 11, 21, tzinfo=UTC))
    for backup in (older, newest):
        await run_backup(settings, backups, objects, tenant, backup, "manual", log)
    ctx = {"settings": settings, "backups": backups, "redis": redis, "job_id": "drill-test"}

    first = await restore_drills(ctx)
    assert first[tenant.slug] == "ok"
    drilled = await find_backup(tenant.id, newest)
    assert drilled is not None and drilled.drilled_at is not None and drilled.drill_error is None
    untouched = await find_backup(tenant.id, older)
    assert untouched is not None and untouched.drilled_at is None
    assert tenant.slug not in await restore_drills(ctx)
