"""Verifying a backup and keeping the outcome: in the catalogue (``verified_at``,
``verify_error``) and as a ``backup.verify`` event in the tenant's audit trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import note_check
from dangan.backups.reader import VerifyReport, verify_backup
from dangan.backups.store import BackupStore
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef


async def verify_and_record(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    backup: str,
    log: ActionLog,
    on_stream: Callable[[str], None] | None = None,
) -> VerifyReport:
    report = await verify_backup(settings, store, tenant.slug, backup, on_stream)
    error = "; ".join(report.problems)[:2000] or None
    await note_check(tenant.id, backup, drill=False, error=error, at=datetime.now(UTC))
    await log.record_apart(
        tenant,
        "backup.verify",
        details={"backup": backup, "ok": report.ok, "problems": len(report.problems)},
    )
    return report
