"""The tenant's backups as its staff see them: the catalogue and the recent runs with
their state and progress (admins and auditors), and a backup asked for now (admins),
read from the platform tables for the caller's tenant only — on connections of their own
(:func:`dangan.database.pool_client`): the request's transaction is the tenant role's,
which may not read them, and sibling fields share its connection."""

from __future__ import annotations

from datetime import UTC, datetime

from arq.connections import ArqRedis

from dangan.authz.capabilities import check_allowed
from dangan.backups.catalogue import BackupRecord, list_backups
from dangan.backups.errors import BackupError
from dangan.backups.slots import check_backup_id
from dangan.backups.status import RunStatus, backup_status, run_status
from dangan.database import pool_client
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, NotFound
from dangan.settings import Settings
from dangan.tenants.scope import current_tenant
from dangan.workers.backups import enqueue_backup

MAX_LISTED = 200


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LISTED:
        raise BadUserInput(f"limit must be between 1 and {MAX_LISTED}", field="limit")
    return limit


async def tenant_backups(caller: Caller, limit: int) -> list[BackupRecord]:
    check_allowed(caller, "backup.read")
    limit = _limit(limit)
    return await list_backups(current_tenant().id, limit=limit, db=pool_client())


async def tenant_backup_runs(
    caller: Caller, redis: ArqRedis, settings: Settings, limit: int
) -> list[RunStatus]:
    check_allowed(caller, "backup.read")
    limit = _limit(limit)
    status = await backup_status(
        redis, settings, current_tenant(), runs=limit, backups=1, db=pool_client()
    )
    return status.runs


async def tenant_backup_run(
    caller: Caller, redis: ArqRedis, settings: Settings, backup: str
) -> RunStatus:
    check_allowed(caller, "backup.read")
    try:
        check_backup_id(backup)
    except BackupError as exc:
        raise BadUserInput(exc.message, field="id") from exc
    found = await run_status(redis, settings, current_tenant(), backup, db=pool_client())
    if found is None:
        raise NotFound(f"no backup run {backup} in this tenant", field="id")
    return found


async def request_backup(caller: Caller, redis: ArqRedis, settings: Settings) -> RunStatus:
    """Queue the tenant's backup of this minute (asking twice in a minute is one
    backup); its state and progress as they are now."""
    check_allowed(caller, "backup.run")
    tenant = current_tenant()
    queued = await enqueue_backup(redis, settings, tenant, "manual", datetime.now(UTC))
    found = await run_status(redis, settings, tenant, queued.backup_id, db=pool_client())
    assert found is not None  # queued just now, or already run
    return found
