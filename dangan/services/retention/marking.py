"""Phase 1 of a retention run: mark what the rules apply to, unmark what they no longer do.

Each enabled rule's statement (:mod:`dangan.services.retention.queries`) finds, in one
query, everything it applies to at the run's clock; what is not marked yet becomes a
candidate, due ``grace_days`` later, with its reason and the owner it was marked for
(the notice: owners read it with ``retentionCandidates``). A candidate whose reason went
away — new activity, another status, the record deleted, a legal hold, a longer
retention, the rule switched off — is unmarked with the reason, never purged. Held
customers (and their communications, and share requests naming them) are never marked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dangan.services.retention.queries import RULE_QUERIES
from dangan.services.retention.rules import RetentionRule
from dangan.tenants.scope import raw_connection

_RECORD_NAMES = {
    "customer": "customer",
    "communication": "communication",
    "share_request": "share request",
}
_MARKED = (
    "SELECT 1 FROM retention_candidate k WHERE k.rule = $4 AND k.record_id = s.record_id"
    " AND k.status = 'marked'"
)
_INSERT = """
INSERT INTO retention_candidate (rule, record_type, record_id, customer_id, owner_id, basis_at,
                                 reason, marked_at, due_at)
SELECT $4, s.record_type, s.record_id, s.customer_id, s.owner_id, s.basis_at, s.reason,
       $1, $1::timestamptz + make_interval(days => $5::integer)
  FROM ({subjects}) s
 WHERE NOT EXISTS ({marked})
ON CONFLICT (rule, record_id) WHERE status = 'marked' DO NOTHING
RETURNING record_type, record_id, customer_id, reason, due_at"""
_PREVIEW = """
SELECT s.record_type, s.record_id, s.customer_id, s.reason,
       $1::timestamptz + make_interval(days => $5::integer) AS due_at
  FROM ({subjects}) s
 WHERE NOT EXISTS ({marked})
 ORDER BY s.basis_at, s.record_id"""


@dataclass(frozen=True)
class CandidateLine:
    """One record marked, unmarked, waiting or destroyed, and why."""

    rule: str
    record_type: str
    record_id: uuid.UUID
    customer_id: uuid.UUID | None
    reason: str
    due_at: datetime | None = None

    @classmethod
    def from_row(cls, rule: str, row: Any, reason: str | None = None) -> CandidateLine:
        return cls(
            rule=rule,
            record_type=row["record_type"],
            record_id=row["record_id"],
            customer_id=row["customer_id"],
            reason=reason if reason is not None else row["reason"],
            due_at=row["due_at"],
        )


@dataclass
class MarkOutcome:
    marked: list[CandidateLine] = field(default_factory=list)
    unmarked: list[CandidateLine] = field(default_factory=list)


async def subjects(rule: RetentionRule, as_of: datetime, record_ids: Sequence[uuid.UUID]) -> Any:
    """The records among ``record_ids`` that ``rule`` applies to at ``as_of``."""
    return await raw_connection().fetch(
        RULE_QUERIES[rule.rule].subjects, as_of, rule.retention_months, list(record_ids)
    )


async def explain_stale(rule: RetentionRule, candidates: Sequence[Any]) -> dict[uuid.UUID, str]:
    """Why each of ``candidates`` (rows with ``record_id``, ``record_type``, ``basis_at``)
    no longer falls under ``rule``."""
    if not candidates:
        return {}
    query = RULE_QUERIES[rule.rule]
    rows = await raw_connection().fetch(query.state, [c["record_id"] for c in candidates])
    states = {row["record_id"]: row for row in rows}
    reasons: dict[uuid.UUID, str] = {}
    for candidate in candidates:
        state = states[candidate["record_id"]]
        what = _RECORD_NAMES[candidate["record_type"]]
        if not rule.enabled:
            reasons[candidate["record_id"]] = "the rule is switched off"
        elif not state["present"]:
            reasons[candidate["record_id"]] = f"the {what} no longer exists"
        elif state["held"]:
            reasons[candidate["record_id"]] = "a legal hold protects it"
        elif state["state"] is not None:
            reasons[candidate["record_id"]] = state["state"]
        elif state["basis_at"] is not None and state["basis_at"] > candidate["basis_at"]:
            day = state["basis_at"].date().isoformat()
            reasons[candidate["record_id"]] = query.moved.format(day=day)
        else:
            reasons[candidate["record_id"]] = f"the rule now keeps {what}s {rule.period}"
    return reasons


async def unmark(
    rule: RetentionRule,
    candidates: Sequence[Any],
    as_of: datetime,
    *,
    dry_run: bool,
    reason: str | None = None,
) -> list[CandidateLine]:
    """Unmark ``candidates`` (rows of retention_candidate) with the reason each no longer
    applies (or ``reason`` for all); returns them as lines."""
    if reason is not None:
        reasons = {c["record_id"]: reason for c in candidates}
    else:
        reasons = await explain_stale(rule, candidates)
    if not dry_run and candidates:
        await raw_connection().execute(
            "UPDATE retention_candidate k SET status = 'unmarked', unmarked_at = $1,"
            " unmark_reason = u.reason FROM unnest($2::bigint[], $3::text[]) AS u(id, reason)"
            " WHERE k.id = u.id AND k.status = 'marked'",
            as_of,
            [c["id"] for c in candidates],
            [reasons[c["record_id"]] for c in candidates],
        )
    return [CandidateLine.from_row(rule.rule, c, reasons[c["record_id"]]) for c in candidates]


async def _stale(rule: RetentionRule, as_of: datetime) -> list[Any]:
    """The rule's marked candidates that it no longer applies to."""
    marked = await raw_connection().fetch(
        "SELECT id, record_type, record_id, customer_id, basis_at, reason, due_at"
        " FROM retention_candidate WHERE rule = $1 AND status = 'marked' ORDER BY id",
        rule.rule,
    )
    if not marked or not rule.enabled:
        return list(marked)
    found = await subjects(rule, as_of, [m["record_id"] for m in marked])
    applying = {row["record_id"] for row in found}
    return [m for m in marked if m["record_id"] not in applying]


async def mark_candidates(
    rules: Sequence[RetentionRule], as_of: datetime, *, dry_run: bool
) -> MarkOutcome:
    """Phase 1 for every rule, in the open transaction (``dry_run``: what it would do,
    writing nothing)."""
    outcome = MarkOutcome()
    for rule in rules:
        outcome.unmarked += await unmark(rule, await _stale(rule, as_of), as_of, dry_run=dry_run)
        if not rule.enabled:
            continue
        query = RULE_QUERIES[rule.rule]
        statement = (_PREVIEW if dry_run else _INSERT).format(
            subjects=query.subjects, marked=_MARKED
        )
        rows = await raw_connection().fetch(
            statement, as_of, rule.retention_months, None, rule.rule, rule.grace_days
        )
        outcome.marked += [CandidateLine.from_row(rule.rule, row) for row in rows]
    return outcome
