"""Retention purges in the period (定期清理, 销毁登记): destructions by rule, what was
marked and unmarked, what waits now, and legal holds.

Destructions come from ``destruction_record`` (never edited); marks from the
``retention.mark`` audit events (a candidate's own row goes with what it destroyed);
unmarks and what is pending now from ``retention_candidate``; holds from ``legal_hold``
(the released holds of a customer destroyed since go with it). Counts only: no customer,
no hold reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from dangan.services.compliance.period import Period
from dangan.services.compliance.tables import Cell, Column, Table
from dangan.services.retention.rules import RULE_SPECS
from dangan.tenants.scope import raw_connection

_DESTRUCTIONS = """
SELECT rule, count(*) AS destructions,
       sum(cardinality(subject_hashes)) AS records_destroyed,
       count(*) FILTER (WHERE approved_by IS NOT NULL) AS approved,
       count(*) FILTER (WHERE operator_clock) AS operator_clock
  FROM destruction_record WHERE destroyed_at >= $1 AND destroyed_at < $2
 GROUP BY rule
"""
_MARKED = """
SELECT m.key AS rule, sum(m.value::integer) AS marked
  FROM audit_event e CROSS JOIN LATERAL jsonb_each_text(e.variables -> 'marked') m
 WHERE 'retention.mark' = ANY(e.actions) AND e.outcome = 'ok' AND e.at >= $1 AND e.at < $2
 GROUP BY m.key
"""
_CANDIDATES = """
SELECT k.rule,
       count(*) FILTER (WHERE k.unmarked_at >= $1 AND k.unmarked_at < $2) AS unmarked,
       count(*) FILTER (WHERE k.status = 'marked') AS pending_now,
       count(*) FILTER (WHERE k.status = 'marked' AND r.requires_approval
                          AND k.approved_by IS NULL) AS awaiting_approval_now
  FROM retention_candidate k JOIN retention_rule r ON r.rule = k.rule
 GROUP BY k.rule
"""
_HOLDS = """
SELECT count(*) FILTER (WHERE placed_at >= $1 AND placed_at < $2) AS placed,
       count(*) FILTER (WHERE released_at >= $1 AND released_at < $2) AS released,
       count(*) FILTER (WHERE placed_at < $2 AND (released_at IS NULL OR released_at >= $2))
           AS active_at_end
  FROM legal_hold
"""


@dataclass(frozen=True)
class RetentionRuleFigures:
    rule: str
    destructions: int  # destruction records written in the period
    records_destroyed: int  # customers, communications or share requests they destroyed
    approved: int  # destructions approved before they ran
    operator_clock: int  # run with an operator's clock (dangan purge run --now)
    marked: int  # candidates marked in the period
    unmarked: int  # candidates unmarked in the period (reason gone, hold, rule off)
    pending_now: int  # marked now, waiting for their due date
    awaiting_approval_now: int


@dataclass(frozen=True)
class RetentionSection:
    by_rule: list[RetentionRuleFigures]
    holds_placed: int
    holds_released: int
    holds_active_at_end: int
    files_pending_now: int  # attachment files of destroyed customers still in S3

    def tables(self) -> list[Table]:
        columns = (
            Column("rule", "rule", "规则"),
            Column("destructions", "destructions", "销毁次数"),
            Column("records_destroyed", "records destroyed", "销毁记录数"),
            Column("approved", "approved", "经审批"),
            Column("operator_clock", "operator's clock", "指定时间运行"),
            Column("marked", "marked", "标记"),
            Column("unmarked", "unmarked", "取消标记"),
            Column("pending_now", "pending now", "当前待销毁"),
            Column("awaiting_approval_now", "awaiting approval now", "当前待审批"),
        )
        rows: list[list[Cell]] = [
            [
                f.rule,
                f.destructions,
                f.records_destroyed,
                f.approved,
                f.operator_clock,
                f.marked,
                f.unmarked,
                f.pending_now,
                f.awaiting_approval_now,
            ]
            for f in self.by_rule
        ]
        holds = (Column("figure", "figure", "项目"), Column("value", "value", "结果"))
        return [
            Table("retention", "Retention purges", "定期清理与销毁", columns, rows),
            Table(
                "legal_holds",
                "Legal holds",
                "法律保全",
                holds,
                [
                    ["placed 新增", self.holds_placed],
                    ["released 解除", self.holds_released],
                    ["active at the period's end 期末有效", self.holds_active_at_end],
                    ["attachment files still to remove 待删除附件文件", self.files_pending_now],
                ],
            ),
        ]


async def retention_section(period: Period) -> RetentionSection:
    conn = raw_connection()
    destroyed = {row["rule"]: row for row in await conn.fetch(_DESTRUCTIONS, *period.bounds)}
    marked = {row["rule"]: row["marked"] for row in await conn.fetch(_MARKED, *period.bounds)}
    candidates = {row["rule"]: row for row in await conn.fetch(_CANDIDATES, *period.bounds)}
    holds = await conn.fetchrow(_HOLDS, *period.bounds)
    pending_files = await conn.fetchval("SELECT count(*) FROM retention_object_removal")
    figures = []
    for rule in RULE_SPECS:
        done, waiting = destroyed.get(rule), candidates.get(rule)
        figures.append(
            RetentionRuleFigures(
                rule=rule,
                destructions=done["destructions"] if done else 0,
                records_destroyed=done["records_destroyed"] if done else 0,
                approved=done["approved"] if done else 0,
                operator_clock=done["operator_clock"] if done else 0,
                marked=marked.get(rule, 0),
                unmarked=waiting["unmarked"] if waiting else 0,
                pending_now=waiting["pending_now"] if waiting else 0,
                awaiting_approval_now=waiting["awaiting_approval_now"] if waiting else 0,
            )
        )
    return RetentionSection(
        by_rule=figures,
        holds_placed=holds["placed"],
        holds_released=holds["released"],
        holds_active_at_end=holds["active_at_end"],
        files_pending_now=pending_files,
    )
