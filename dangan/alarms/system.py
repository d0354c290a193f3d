"""Alerts about the platform's own work rather than about a person: a tenant's backup that
failed for good (rule ``backup_failed``, tenant version 14).

The job that failed raises the alert itself, in the transaction that records the
failure; the evaluation of the audit trail has no part in it. The actor is ``system``
and the alert is keyed by what failed (``backup:<id>``): a second failure of the same
backup while its alert is not closed adds to it, a failure of another backup opens
another. Such alerts never suspend anyone, can't be turned off, and go to the operators'
webhook as well as to the tenant's own (:mod:`dangan.workers.alarms`).
"""

from __future__ import annotations

from typing import Any

import orjson

from dangan.alarms.opening import Opened
from dangan.alarms.rules import RULE_SPECS
from dangan.tenants.scope import raw_connection

SYSTEM_ALERTS_VERSION = 14
_DEFAULT_SEVERITY = "high"


async def raise_system_alert(
    rule: str,
    subject: str,
    *,
    name: str,
    summary: str,
    evidence: dict[str, Any],
    seq: int,
) -> Opened | None:
    """Open an alert of ``rule`` about ``subject`` (inside the tenant's transaction), or
    add to the one still open; the alert opened, None if it was added to. ``seq`` is the
    audit event that records what happened."""
    assert RULE_SPECS[rule].platform, rule
    session = raw_connection()
    severity = await session.fetchval("SELECT severity FROM alarm_rule WHERE rule = $1", rule)
    row = await session.fetchrow(
        "INSERT INTO alert (rule, severity, actor_kind, actor_name, actor_key, summary,"
        " last_seen_at, first_seq, last_seq, evidence)"
        " VALUES ($1, $2, 'system', $3, $4, $5, now(), $6, $6, $7::jsonb)"
        " ON CONFLICT (rule, actor_key) WHERE status <> 'closed' DO UPDATE SET"
        " occurrences = alert.occurrences + 1, last_seen_at = now(),"
        " last_seq = greatest(alert.last_seq, EXCLUDED.last_seq), summary = EXCLUDED.summary,"
        " evidence = alert.evidence || EXCLUDED.evidence - 'firstAt'"
        " RETURNING id, (xmax = 0) AS opened",
        rule,
        severity or _DEFAULT_SEVERITY,
        name,
        subject,
        summary,
        seq,
        orjson.dumps(evidence).decode(),
    )
    return Opened(row["id"], rule, suspended=False) if row["opened"] else None
