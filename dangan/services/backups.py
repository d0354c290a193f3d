"""The tenant's backups as its staff see them: the catalogue and the recent runs (admins
and auditors), read from the platform tables for the caller's tenant only."""

from __future__ import annotations

from dangan.authz.capabilities import check_allowed
from dangan.backups.catalogue import BackupRecord, BackupRun, list_backups, recent_runs
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.tenants.scope import current_tenant, platform_part

MAX_LISTED = 200


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LISTED:
        raise BadUserInput(f"limit must be between 1 and {MAX_LISTED}", field="limit")
    return limit


async def tenant_backups(caller: Caller, limit: int) -> list[BackupRecord]:
    check_allowed(caller, "backup.read")
    limit = _limit(limit)
    async with platform_part():
        return await list_backups(current_tenant().id, limit=limit)


async def tenant_backup_runs(caller: Caller, limit: int) -> list[BackupRun]:
    check_allowed(caller, "backup.read")
    limit = _limit(limit)
    async with platform_part():
        return await recent_runs(current_tenant().id, limit=limit)
