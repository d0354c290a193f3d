"""Access-policy versions proposed or activated in the period: which version, who, when.

From ``policy_version`` (every version is kept). A version activated more than once
(a rollback to it, then away and back) shows its latest activation only; the audit
trail holds each ``activatePolicy`` request. Comments and policy files are left out:
``policyVersions`` shows them to administrators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Column, Table
from dangan.tenants.scope import raw_connection

_CHANGES = """
SELECT v.id, v.status, v.proposed_by, p.display_name AS proposed_by_name, v.proposed_at,
       v.activated_by, a.display_name AS activated_by_name, v.activated_at
  FROM policy_version v
  LEFT JOIN member p ON p.identity_id = v.proposed_by
  LEFT JOIN member a ON a.identity_id = v.activated_by
 WHERE (v.proposed_at >= $1 AND v.proposed_at < $2)
    OR (v.activated_at >= $1 AND v.activated_at < $2)
 ORDER BY v.id
"""


@dataclass(frozen=True)
class PolicyChange:
    version: int
    status: str  # now: proposed | active | retired
    proposed_by_id: int
    proposed_by: str | None
    proposed_at: datetime
    activated_by_id: int | None
    activated_by: str | None
    activated_at: datetime | None


@dataclass(frozen=True)
class PolicySection:
    active_version: int | None  # now; None: the shipped default policy
    changes: list[PolicyChange]

    def tables(self) -> list[Table]:
        columns = (
            Column("version", "version", "版本"),
            Column("status", "status now", "当前状态"),
            Column("proposed_by", "proposed by", "提议人"),
            Column("proposed_at", "proposed at", "提议时间"),
            Column("activated_by", "activated by", "启用人"),
            Column("activated_at", "activated at", "启用时间"),
        )
        rows: list[list[Any]] = [
            [
                c.version,
                c.status,
                _person(c.proposed_by, c.proposed_by_id),
                c.proposed_at,
                _person(c.activated_by, c.activated_by_id),
                c.activated_at,
            ]
            for c in self.changes
        ]
        active = "default 默认" if self.active_version is None else str(self.active_version)
        return [
            Table(
                "policy_changes",
                "Access policy changes",
                "访问策略变更",
                columns,
                rows,
                note=f"active version now 当前启用版本: {active}",
            )
        ]


def _person(name: str | None, identity_id: int | None) -> str | None:
    if identity_id is None:
        return None
    return f"{name or '?'} (#{identity_id})"


async def policy_section(period: Period) -> PolicySection:
    conn = raw_connection()
    active = await conn.fetchval("SELECT id FROM policy_version WHERE status = 'active'")
    rows = await conn.fetch(_CHANGES, *period.bounds)
    return PolicySection(
        active_version=active,
        changes=[
            PolicyChange(
                version=row["id"],
                status=row["status"],
                proposed_by_id=row["proposed_by"],
                proposed_by=row["proposed_by_name"],
                proposed_at=row["proposed_at"],
                activated_by_id=row["activated_by"],
                activated_by=row["activated_by_name"],
                activated_at=row["activated_at"],
            )
            for row in rows
        ],
    )
