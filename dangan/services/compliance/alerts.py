"""Alerts in the period (报警): how many opened, by rule and severity, and where each
stands now — open, acknowledged or closed, by whom.

From the ``alert`` table (:mod:`dangan.alarms`). Who an alert is about and who decided
on it are named; the evidence (addresses, audit event numbers) and the free-text
acknowledgement notes and closing reasons are left out, like every free text in the
report: ``alert(id)`` shows them to administrators and auditors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Column, Table
from dangan.tenants.scope import raw_connection

_BY_RULE = """
SELECT rule, severity,
       count(*) AS opened,
       count(*) FILTER (WHERE status = 'open') AS open_now,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged_now,
       count(*) FILTER (WHERE status = 'closed') AS closed_now,
       count(*) FILTER (WHERE suspended) AS suspensions
  FROM alert
 WHERE opened_at >= $1 AND opened_at < $2
 GROUP BY rule, severity
 ORDER BY rule, severity
"""
_OPENED = """
SELECT a.id, a.rule, a.severity, a.status, a.actor_kind, a.actor_id, a.actor_name,
       a.opened_at, a.occurrences, a.suspended,
       a.acknowledged_at, ack.display_name AS acknowledged_by,
       a.closed_at, c.display_name AS closed_by
  FROM alert a
  LEFT JOIN member ack ON ack.identity_id = a.acknowledged_by
  LEFT JOIN member c ON c.identity_id = a.closed_by
 WHERE a.opened_at >= $1 AND a.opened_at < $2
 ORDER BY a.opened_at, a.id
"""
# Opened before the period ended and not closed by then, whenever they were opened.
_OPEN_AT_END = """
SELECT count(*) FROM alert
 WHERE opened_at < $1 AND (closed_at IS NULL OR closed_at >= $1)
"""
_CLOSED_IN_PERIOD = "SELECT count(*) FROM alert WHERE closed_at >= $1 AND closed_at < $2"


@dataclass(frozen=True)
class AlertRuleCount:
    rule: str
    severity: str
    opened: int
    open_now: int
    acknowledged_now: int
    closed_now: int
    suspensions: int


@dataclass(frozen=True)
class AlertEntry:
    id: int
    rule: str
    severity: str
    status: str  # now
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    opened_at: datetime
    occurrences: int
    suspended: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    closed_by: str | None


@dataclass(frozen=True)
class AlertSection:
    opened: int  # in the period
    closed: int  # in the period, whenever opened
    open_at_end: int  # not closed when the period ended, whenever opened
    by_rule: list[AlertRuleCount]
    alerts: list[AlertEntry]

    def tables(self) -> list[Table]:
        summary = Table(
            "alerts_by_rule",
            "Alerts by rule",
            "报警（按规则）",
            (
                Column("rule", "rule", "规则"),
                Column("severity", "severity", "级别"),
                Column("opened", "opened", "新增"),
                Column("open_now", "open now", "当前未处理"),
                Column("acknowledged_now", "acknowledged now", "当前已确认"),
                Column("closed_now", "closed now", "当前已关闭"),
                Column("suspensions", "credentials suspended", "暂停凭证"),
            ),
            [
                [
                    *(r.rule, r.severity, r.opened, r.open_now),
                    *(r.acknowledged_now, r.closed_now, r.suspensions),
                ]
                for r in self.by_rule
            ],
            note=(
                f"opened 新增 {self.opened} · closed 关闭 {self.closed}"
                f" · still open at the end of the period 期末未关闭 {self.open_at_end}"
            ),
        )
        listing = Table(
            "alerts",
            "Alerts opened in the period",
            "本期报警",
            (
                Column("id", "alert", "报警编号"),
                Column("rule", "rule", "规则"),
                Column("severity", "severity", "级别"),
                Column("actor", "about", "涉及对象"),
                Column("opened_at", "opened at", "发生时间"),
                Column("occurrences", "occurrences", "次数"),
                Column("status", "status now", "当前状态"),
                Column("acknowledged_by", "acknowledged by", "确认人"),
                Column("closed_by", "closed by", "关闭人"),
                Column("closed_at", "closed at", "关闭时间"),
            ),
            [
                [
                    *(a.id, a.rule, a.severity, _actor(a), a.opened_at, a.occurrences),
                    *(a.status, a.acknowledged_by, a.closed_by, a.closed_at),
                ]
                for a in self.alerts
            ],
        )
        return [summary, listing]


def _actor(alert: AlertEntry) -> str:
    if alert.actor_id is None:
        return alert.actor_name or alert.actor_kind
    return f"{alert.actor_name or '?'} ({alert.actor_kind} #{alert.actor_id})"


def _entry(row: Any) -> AlertEntry:
    return AlertEntry(**{name: row[name] for name in AlertEntry.__dataclass_fields__})


async def alerts_section(period: Period) -> AlertSection:
    conn = raw_connection()
    bounds = period.bounds
    by_rule = [
        AlertRuleCount(**{name: row[name] for name in AlertRuleCount.__dataclass_fields__})
        for row in await conn.fetch(_BY_RULE, *bounds)
    ]
    return AlertSection(
        opened=sum(r.opened for r in by_rule),
        closed=await conn.fetchval(_CLOSED_IN_PERIOD, *bounds),
        open_at_end=await conn.fetchval(_OPEN_AT_END, period.end),
        by_rule=by_rule,
        alerts=[_entry(row) for row in await conn.fetch(_OPENED, *bounds)],
    )
