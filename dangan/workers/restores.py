"""Restore jobs: the daily restore drill (each tenant's newest backup, when it has not
been drilled within ``DRILL_EVERY``, is loaded into a scratch schema, verified and
dropped; the outcome goes to the catalogue and the trail) and the daily removal of
schemas a restore replaced once their time is up (and of a crashed restore's scratch
schema after a day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import list_backups
from dangan.backups.restore import drill_backup
from dangan.services.errors import DanganError
from dangan.tenants.registry import list_tenants
from dangan.tenants.restoring import drop_retired
from dangan.workers.progress import report

DRILL_EVERY = timedelta(days=7)
log = structlog.get_logger("dangan.restore")


async def restore_drills(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron: drill the tenants whose newest backup is due; tenant -> "ok" or why not.
    A rerun the same day finds nothing due (each drill is recorded as it ends)."""
    settings = ctx["settings"]
    now = datetime.now(UTC)
    tenants = await list_tenants()
    outcome: dict[str, str] = {}
    for done, tenant in enumerate(tenants, start=1):
        newest = await list_backups(tenant.id, limit=1)
        due = newest and (newest[0].drilled_at is None or now - newest[0].drilled_at >= DRILL_EVERY)
        if due:
            try:
                await drill_backup(
                    settings,
                    ctx["backups"],
                    tenant,
                    newest[0].id,
                    ActionLog(settings.secret_key, "job"),
                )
                outcome[tenant.slug] = "ok"
            except DanganError as exc:
                log.error("restore drill failed", tenant=tenant.slug, error=exc.message)
                outcome[tenant.slug] = exc.message
        await report(
            ctx["redis"],
            settings.redis_namespace,
            ctx.get("job_id", "restore-drills"),
            done=done,
            total=len(tenants),
            stage=tenant.slug,
        )
    return outcome


async def drop_retired_schemas(ctx: dict[str, Any]) -> list[str]:
    """Cron: drop the schemas restores replaced whose keep period is over."""
    return await drop_retired(datetime.now(UTC))
