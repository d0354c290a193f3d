"""Backups in the period (备份) — an extension point, honest until it is filled.

This version keeps no backup catalogue (backups arrive with issue 7), so the report says
exactly that and reports no figures rather than guessing. When the catalogue lands, this
function reads it for the period — backups run, failed and verified, the last good one
and its age, restores — and fills :class:`BackupSection` (with a table per figure group);
nothing else in the report changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Column, Table

NO_CATALOGUE = (
    "no backup catalogue yet: this version does not record backups, so none can be reported"
    " (尚无备份目录：本版本不记录备份，无法报告)"
)


@dataclass(frozen=True)
class BackupSection:
    catalogued: bool  # False: there is no catalogue to report from
    note: str

    def tables(self) -> list[Table]:
        columns = (Column("figure", "figure", "项目"), Column("value", "value", "结果"))
        return [Table("backups", "Backups", "备份", columns, [], note=self.note)]


async def backup_section(period: Period) -> BackupSection:
    return BackupSection(catalogued=False, note=NO_CATALOGUE)
