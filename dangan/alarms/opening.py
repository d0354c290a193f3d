"""Turning triggers into alerts: one alert per rule and actor while it is not closed.

A rule that fires again for an actor whose alert is still open (or acknowledged) adds
to that alert — occurrences, the latest events, the highest count seen — instead of
opening another. Only the evaluation job writes alerts here, one tenant at a time (it
holds the tenant's ``alarm_cursor`` row), so finding and then inserting cannot race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from dangan.alarms.detect import Trigger
from dangan.alarms.rules import AlarmRule
from dangan.tenants.scope import raw_connection

MAX_EVIDENCE_EVENTS = 50
MAX_EVIDENCE_ITEMS = 20
_SUMMARIES = {
    "bulk_read": "{who} was sent {observed} distinct customers within {window} minutes",
    "off_hours": "{who} made {observed} requests outside working hours within {window} minutes",
    "probing": "{who}: {observed} requests ended FORBIDDEN, NOT_FOUND or UNAUTHENTICATED"
    " within {window} minutes",
    "reveal_burst": "{who} asked to reveal masked values {observed} times within {window} minutes",
    "export_spike": "{who} started {observed} customer exports within {window} minutes",
    "new_address": "{who} was used from a new address, {address}",
}


@dataclass
class Finding:
    """The triggers of one rule and one actor in a batch of events."""

    rule: str
    actor_key: str
    triggers: list[Trigger]


@dataclass(frozen=True)
class Opened:
    id: int
    rule: str
    suspended: bool


def group(triggers: Sequence[Trigger]) -> list[Finding]:
    found: dict[tuple[str, str], Finding] = {}
    for trigger in sorted(triggers, key=lambda t: t.event.seq):
        actor_key = trigger.event.actor_key
        assert actor_key is not None
        key = (trigger.rule, actor_key)
        found.setdefault(key, Finding(trigger.rule, actor_key, [])).triggers.append(trigger)
    return list(found.values())


def _capped(values: Sequence[Any], limit: int) -> list[Any]:
    return list(dict.fromkeys(values))[-limit:]


def _evidence(finding: Finding, rule: AlarmRule, before: dict[str, Any] | None) -> dict[str, Any]:
    triggers = finding.triggers
    observed = [t.observed for t in triggers if t.observed is not None]
    before = before or {}
    evidence: dict[str, Any] = {
        "threshold": rule.threshold,
        "windowMinutes": rule.window_minutes,
        "observed": max([*observed, before.get("observed") or 0]) if observed else None,
        "events": _capped(
            [*before.get("events", []), *(t.event.seq for t in triggers)], MAX_EVIDENCE_EVENTS
        ),
        "addresses": _capped(
            [*before.get("addresses", []), *(t.event.client_address for t in triggers)],
            MAX_EVIDENCE_ITEMS,
        ),
        "operations": _capped(
            [*before.get("operations", []), *(t.event.operation_name for t in triggers)],
            MAX_EVIDENCE_ITEMS,
        ),
        "firstAt": before.get("firstAt") or triggers[0].event.at.isoformat(),
        "lastAt": triggers[-1].event.at.isoformat(),
    }
    evidence["addresses"] = [a for a in evidence["addresses"] if a]
    evidence["operations"] = [o for o in evidence["operations"] if o]
    details = triggers[-1].details
    if details:
        evidence["details"] = details
    if "suspension" in before:
        evidence["suspension"] = before["suspension"]
    return evidence


def _summary(finding: Finding, rule: AlarmRule, evidence: dict[str, Any]) -> str:
    event = finding.triggers[-1].event
    who = event.actor_name or finding.actor_key.replace("address:", "address ")
    return _SUMMARIES[finding.rule].format(
        who=who,
        observed=evidence.get("observed"),
        window=rule.window_minutes,
        address=evidence.get("details", {}).get("address"),
    )


async def _suspension(finding: Finding, rule: AlarmRule) -> tuple[bool, str | None]:
    """Whether a new alert suspends its actor, and why not when the rule says so.

    Administrators can't all be locked out: the tenant's last administrator who isn't
    suspended already is never suspended (the alert says so), so someone can always
    review alerts and reinstate people.
    """
    if not rule.suspend:
        return False, None
    event = finding.triggers[-1].event
    if event.credential is None:
        return False, "not suspended: an anonymous caller has no credential"
    if event.actor_kind == "user":
        row = await raw_connection().fetchrow(
            "SELECT EXISTS (SELECT 1 FROM member WHERE identity_id = $1"
            " AND 'admin' = ANY(roles)) AS admin,"
            " EXISTS (SELECT 1 FROM member m WHERE m.active AND 'admin' = ANY(m.roles)"
            " AND m.identity_id <> $1 AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.suspended"
            " AND a.reinstated_at IS NULL AND a.actor_kind = 'user'"
            " AND a.actor_id = m.identity_id)) AS other_admin",
            event.actor_id,
        )
        if row["admin"] and not row["other_admin"]:
            return False, "not suspended: the tenant's last administrator who is not suspended"
    return True, None


async def _open(finding: Finding, rule: AlarmRule) -> Opened:
    first, last = finding.triggers[0].event, finding.triggers[-1].event
    suspended, why_not = await _suspension(finding, rule)
    evidence = _evidence(finding, rule, None)
    if why_not:
        evidence["suspension"] = why_not
    alert_id = await raw_connection().fetchval(
        "INSERT INTO alert (rule, severity, actor_kind, actor_id, actor_name, actor_key,"
        " client_address, summary, last_seen_at, occurrences, first_seq, last_seq, evidence,"
        " suspended) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14)"
        " RETURNING id",
        finding.rule,
        rule.severity,
        last.actor_kind,
        last.actor_id,
        last.actor_name,
        finding.actor_key,
        last.client_address,
        _summary(finding, rule, evidence),
        last.at,
        len(finding.triggers),
        first.seq,
        last.seq,
        orjson.dumps(evidence).decode(),
        suspended,
    )
    return Opened(alert_id, finding.rule, suspended)


async def record_findings(findings: Sequence[Finding], rules: dict[str, AlarmRule]) -> list[Opened]:
    """Open an alert per finding, or add to the one still open; the alerts opened."""
    opened = []
    for finding in findings:
        rule = rules[finding.rule]
        current = await raw_connection().fetchrow(
            "SELECT id, evidence FROM alert WHERE rule = $1 AND actor_key = $2"
            " AND status <> 'closed' FOR UPDATE",
            finding.rule,
            finding.actor_key,
        )
        if current is None:
            opened.append(await _open(finding, rule))
            continue
        evidence = _evidence(finding, rule, orjson.loads(current["evidence"]))
        last = finding.triggers[-1].event
        await raw_connection().execute(
            "UPDATE alert SET occurrences = occurrences + $2,"
            " last_seen_at = greatest(last_seen_at, $3), last_seq = greatest(last_seq, $4),"
            " actor_name = coalesce($5, actor_name), client_address = coalesce($6, client_address),"
            " evidence = $7::jsonb, summary = $8 WHERE id = $1",
            current["id"],
            len(finding.triggers),
            last.at,
            last.seq,
            last.actor_name,
            last.client_address,
            orjson.dumps(evidence).decode(),
            _summary(finding, rule, evidence),
        )
    return opened
