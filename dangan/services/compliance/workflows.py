"""The period's approvals, exports, shares and reveals, counted from their own tables.

The audit trail says who did each step (see :mod:`.activity`); these tables say what
became of it: changes still waiting, exports that ran and how many rows they held,
shares approved for whom, which fields were revealed. Counts only — never a value, a
purpose, a reason or the conditions of an export (they may hold customer data).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from dangan.models.archive import CUSTOMER_FIELDS
from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Column, Table
from dangan.services.customers.inputs import api_name
from dangan.tenants.scope import raw_connection


def _in(column: str) -> str:
    return f"({column} >= $1 AND {column} < $2)"


def _figures(section: Any, labels: dict[str, tuple[str, str]], key: str, en: str, zh: str) -> Table:
    """A section of plain counts as a two-column table (figure, count)."""
    columns = (Column("figure", "figure", "项目"), Column("count", "count", "数量"))
    rows: list[list[Any]] = [
        [f"{labels[f.name][0]} {labels[f.name][1]}", getattr(section, f.name)]
        for f in fields(section)
    ]
    return Table(key, en, zh, columns, rows)


def _ints(row: Any) -> dict[str, int]:
    return {name: int(value) for name, value in row.items()}


@dataclass(frozen=True)
class ChangeCounts:
    recorded: int  # change records made in the period
    applied: int  # … applied at once
    submitted: int  # … that had to wait for approval
    still_pending: int  # … of those, still waiting now
    approved: int  # pending changes approved in the period
    rejected: int
    withdrawn: int
    pending_now: int  # every change waiting for approval now, whenever made

    def tables(self) -> list[Table]:
        return [_figures(self, _CHANGE_LABELS, "changes", "Changes and approvals", "修改与审批")]


_CHANGE_LABELS = {
    "recorded": ("changes recorded", "修改记录"),
    "applied": ("applied at once", "直接生效"),
    "submitted": ("submitted for approval", "提交审批"),
    "still_pending": ("of those, still pending", "其中仍待审批"),
    "approved": ("approved", "批准"),
    "rejected": ("rejected", "驳回"),
    "withdrawn": ("withdrawn", "撤回"),
    "pending_now": ("pending now (any period)", "当前待审批(全部)"),
}
_CHANGES = f"""
SELECT count(*) FILTER (WHERE {_in("at")}) AS recorded,
       count(*) FILTER (WHERE {_in("at")} AND status = 'APPLIED') AS applied,
       count(*) FILTER (WHERE {_in("at")} AND status <> 'APPLIED') AS submitted,
       count(*) FILTER (WHERE {_in("at")} AND status = 'PENDING') AS still_pending,
       count(*) FILTER (WHERE {_in("decided_at")} AND status = 'APPROVED') AS approved,
       count(*) FILTER (WHERE {_in("decided_at")} AND status = 'REJECTED') AS rejected,
       count(*) FILTER (WHERE {_in("decided_at")} AND status = 'WITHDRAWN') AS withdrawn,
       (SELECT count(*) FROM customer_change WHERE status = 'PENDING') AS pending_now
  FROM customer_change
 WHERE {_in("at")} OR {_in("decided_at")}
"""


async def changes_section(period: Period) -> ChangeCounts:
    row = await raw_connection().fetchrow(_CHANGES, *period.bounds)
    return ChangeCounts(**_ints(row))


@dataclass(frozen=True)
class ExportCounts:
    requested: int  # customer exports asked for in the period
    needed_approval: int  # … larger than the tenant's threshold
    awaiting_approval: int  # … of those, still undecided
    approved: int  # decided in the period
    rejected: int
    completed: int  # finished in the period
    failed: int
    rows_exported: int  # rows in the files of the completed ones

    def tables(self) -> list[Table]:
        return [_figures(self, _EXPORT_LABELS, "exports", "Customer exports", "客户导出")]


_EXPORT_LABELS = {
    "requested": ("requested", "申请"),
    "needed_approval": ("needed approval", "需审批"),
    "awaiting_approval": ("still awaiting approval", "仍待审批"),
    "approved": ("approved", "批准"),
    "rejected": ("rejected", "驳回"),
    "completed": ("completed", "完成"),
    "failed": ("failed", "失败"),
    "rows_exported": ("rows exported", "导出行数"),
}
_EXPORTS = f"""
SELECT count(*) FILTER (WHERE {_in("created_at")}) AS requested,
       count(*) FILTER (WHERE {_in("created_at")}
                        AND (decided_by IS NOT NULL OR status = 'AWAITING_APPROVAL'))
           AS needed_approval,
       count(*) FILTER (WHERE {_in("created_at")} AND status = 'AWAITING_APPROVAL')
           AS awaiting_approval,
       count(*) FILTER (WHERE {_in("decided_at")} AND status <> 'REJECTED') AS approved,
       count(*) FILTER (WHERE {_in("decided_at")} AND status = 'REJECTED') AS rejected,
       count(*) FILTER (WHERE {_in("finished_at")} AND status = 'SUCCEEDED') AS completed,
       count(*) FILTER (WHERE {_in("finished_at")} AND status = 'FAILED') AS failed,
       coalesce(sum((result->>'rows')::bigint)
                FILTER (WHERE {_in("finished_at")} AND status = 'SUCCEEDED'), 0)::bigint
           AS rows_exported
  FROM archive_job
 WHERE kind = 'EXPORT'
"""


async def exports_section(period: Period) -> ExportCounts:
    row = await raw_connection().fetchrow(_EXPORTS, *period.bounds)
    return ExportCounts(**_ints(row))


@dataclass(frozen=True)
class ShareCounts:
    requested: int
    approved: int
    rejected: int
    revoked: int
    expired: int
    approved_for_people: int  # approvals by grantee
    approved_for_departments: int
    approved_for_apps: int
    customers_shared: int  # distinct customers in the shares approved
    active_now: int  # approved shares in force now, whenever approved

    def tables(self) -> list[Table]:
        return [_figures(self, _SHARE_LABELS, "shares", "Shares and loans", "共享与借阅")]


_SHARE_LABELS = {
    "requested": ("requested", "申请"),
    "approved": ("approved", "批准"),
    "rejected": ("rejected", "驳回"),
    "revoked": ("revoked", "撤销"),
    "expired": ("expired", "到期"),
    "approved_for_people": ("approved for a person", "批准给个人"),
    "approved_for_departments": ("approved for a department", "批准给部门"),
    "approved_for_apps": ("approved for a partner app", "批准给合作应用"),
    "customers_shared": ("customers in approved shares", "被共享客户数"),
    "active_now": ("shares in force now", "当前有效共享"),
}
_SHARE_EVENTS = ", ".join(
    f"count(*) FILTER (WHERE ev.event = '{event}') AS {event}"
    for event in ("requested", "approved", "rejected", "revoked", "expired")
)
_SHARES = f"""
SELECT {_SHARE_EVENTS},
       count(*) FILTER (WHERE ev.event = 'approved' AND r.grantee_user_id IS NOT NULL)
           AS approved_for_people,
       count(*) FILTER (WHERE ev.event = 'approved' AND r.grantee_department_id IS NOT NULL)
           AS approved_for_departments,
       count(*) FILTER (WHERE ev.event = 'approved' AND r.grantee_app_id IS NOT NULL)
           AS approved_for_apps,
       (SELECT count(DISTINCT rc.customer_id)
          FROM share_event ev JOIN share_request_customer rc ON rc.request_id = ev.request_id
         WHERE ev.event = 'approved' AND {_in("ev.at")}) AS customers_shared,
       (SELECT count(*) FROM share_request WHERE status = 'approved' AND valid_until > now())
           AS active_now
  FROM share_event ev JOIN share_request r ON r.id = ev.request_id
 WHERE {_in("ev.at")}
"""


async def shares_section(period: Period) -> ShareCounts:
    row = await raw_connection().fetchrow(_SHARES, *period.bounds)
    return ShareCounts(**_ints(row))


@dataclass(frozen=True)
class RevealCount:
    field_class: str  # sensitivity class: identity, contact …
    field: str  # the API's name of the field
    reveals: int
    customers: int  # distinct customers
    actors: int  # distinct people (or apps) who revealed


@dataclass(frozen=True)
class RevealSection:
    by_field: list[RevealCount]

    @property
    def total(self) -> int:
        return sum(r.reveals for r in self.by_field)

    def tables(self) -> list[Table]:
        columns = (
            Column("field_class", "class", "敏感类别"),
            Column("field", "field", "字段"),
            Column("reveals", "reveals", "查看明文次数"),
            Column("customers", "customers", "客户数"),
            Column("actors", "people", "人数"),
        )
        rows: list[list[Any]] = [
            [r.field_class, r.field, r.reveals, r.customers, r.actors] for r in self.by_field
        ]
        rows.append(["all 全部", "", self.total, None, None])
        return [Table("reveals", "Reveals of masked values", "脱敏字段明文查看", columns, rows)]


_REVEALS = f"""
SELECT field, count(*) AS reveals, count(DISTINCT customer_id) AS customers,
       count(DISTINCT actor_kind || ':' || actor_id) AS actors
  FROM field_reveal
 WHERE {_in("at")}
 GROUP BY field
"""


async def reveals_section(period: Period) -> RevealSection:
    found = [
        RevealCount(
            field_class=spec.sensitivity if (spec := CUSTOMER_FIELDS.get(row["field"])) else "?",
            field=api_name(row["field"]),
            reveals=int(row["reveals"]),
            customers=int(row["customers"]),
            actors=int(row["actors"]),
        )
        for row in await raw_connection().fetch(_REVEALS, *period.bounds)
    ]
    return RevealSection(sorted(found, key=lambda r: (r.field_class, r.field)))
