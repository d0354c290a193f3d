"""Backups in the period (备份): backups made, runs that failed, verifications and restore
drills with their outcome, restores, and the last good backup with its age at the end of
the period.

From the platform's backup catalogue (``public.backup``, ``public.backup_run``), read for
this tenant only, and the tenant's own audit trail (``backup.restore`` events). Errors
are reported by count and the last message (operator words, never customer data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dangan.database import pool_client
from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Cell, Column, Table
from dangan.tenants.scope import current_tenant, raw_connection

_BACKUPS = """
SELECT count(*) FILTER (WHERE finished_at >= $2 AND finished_at < $3) AS made,
       count(*) FILTER (WHERE finished_at >= $2 AND finished_at < $3
                          AND kind = 'scheduled') AS scheduled,
       coalesce(sum(stored_bytes) FILTER (WHERE finished_at >= $2 AND finished_at < $3), 0)
           AS stored_bytes,
       count(*) FILTER (WHERE verified_at >= $2 AND verified_at < $3) AS verified,
       count(*) FILTER (WHERE verified_at >= $2 AND verified_at < $3
                          AND verify_error IS NOT NULL) AS verify_failed,
       count(*) FILTER (WHERE drilled_at >= $2 AND drilled_at < $3) AS drilled,
       count(*) FILTER (WHERE drilled_at >= $2 AND drilled_at < $3
                          AND drill_error IS NOT NULL) AS drill_failed,
       max(finished_at) FILTER (WHERE finished_at < $3) AS last_good_at,
       (array_agg(id ORDER BY finished_at DESC) FILTER (WHERE finished_at < $3))[1]
           AS last_good_id
  FROM public.backup WHERE tenant_id = $1
"""
_FAILED = """
SELECT count(*) AS failed, (array_agg(error ORDER BY updated_at DESC))[1] AS last_error
  FROM public.backup_run
 WHERE tenant_id = $1 AND status = 'failed' AND updated_at >= $2 AND updated_at < $3
"""
_RESTORES = """
SELECT count(*) FROM audit_event
 WHERE at >= $1 AND at < $2 AND 'backup.restore' = ANY(actions) AND outcome = 'ok'
"""


@dataclass(frozen=True)
class BackupSection:
    catalogued: bool
    note: str
    made: int = 0
    scheduled: int = 0
    stored_bytes: int = 0
    failed_runs: int = 0
    last_failure: str | None = None
    verified: int = 0
    verify_failed: int = 0
    drilled: int = 0
    drill_failed: int = 0
    restores: int = 0
    last_good_id: str | None = None
    last_good_at: datetime | None = None
    last_good_age_hours: float | None = None  # at the end of the period

    def tables(self) -> list[Table]:
        columns = (Column("figure", "figure", "项目"), Column("value", "value", "结果"))
        age = None if self.last_good_age_hours is None else f"{self.last_good_age_hours:.1f}"
        rows: list[list[Cell]] = [
            [label, value]
            for label, value in (
                ("backups made (备份次数)", self.made),
                ("of them scheduled (定期)", self.scheduled),
                ("bytes stored (存储字节)", self.stored_bytes),
                ("failed runs (失败)", self.failed_runs),
                ("last failure (最近失败原因)", self.last_failure or ""),
                ("verified (校验)", self.verified),
                ("verifications that found problems (校验失败)", self.verify_failed),
                ("restore drills (恢复演练)", self.drilled),
                ("drills that failed (演练失败)", self.drill_failed),
                ("restores (恢复)", self.restores),
                ("last good backup (最近备份)", self.last_good_id or "none"),
                ("its age at the period's end, hours (距期末小时)", age),
            )
        ]
        return [Table("backups", "Backups", "备份", columns, rows, note=self.note)]


async def backup_section(period: Period) -> BackupSection:
    tenant = current_tenant()
    args = (tenant.id, period.start, period.end)
    catalogue = pool_client()  # the platform's tables, on a connection of their own
    backups = (await catalogue.execute_query_dict(_BACKUPS, list(args)))[0]
    failed = (await catalogue.execute_query_dict(_FAILED, list(args)))[0]
    restores = await raw_connection().fetchval(_RESTORES, period.start, period.end)
    last_at: datetime | None = backups["last_good_at"]
    age = round((period.end - last_at).total_seconds() / 3600, 1) if last_at else None
    return BackupSection(
        catalogued=True,
        note=_note(last_at, failed["failed"]),
        made=backups["made"],
        scheduled=backups["scheduled"],
        stored_bytes=int(backups["stored_bytes"]),
        failed_runs=failed["failed"],
        last_failure=failed["last_error"],
        verified=backups["verified"],
        verify_failed=backups["verify_failed"],
        drilled=backups["drilled"],
        drill_failed=backups["drill_failed"],
        restores=restores,
        last_good_id=backups["last_good_id"],
        last_good_at=last_at,
        last_good_age_hours=age,
    )


def _note(last_at: datetime | None, failed: int) -> str:
    if last_at is None:
        return "no backup of this tenant had finished by the period's end (期末前无完成的备份)"
    if failed:
        return f"{failed} backup run(s) failed in the period (本期有失败的备份)"
    return "backups as recorded in the platform catalogue (据平台备份目录)"
