"""Reading and deciding alerts: administrators and auditors read them, administrators
acknowledge, close and reinstate.

Alerts live in the tenant's schema, so another tenant's alerts are out of reach of the
request's transaction altogether. Nobody acknowledges, closes or reinstates an alert
about themselves: another administrator reviews it. Reinstating lifts every suspension
of the alert's actor (the person or app is reviewed, not one rule); closing without
reinstating leaves the actor suspended (e.g. until their key is rotated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.alarms.rules import RULE_SPECS, SEVERITIES
from dangan.alarms.suspension import Actor
from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

STATUSES = ("open", "acknowledged", "closed")
ALERT_COLUMNS = (
    "id, rule, severity, status, actor_kind, actor_id, actor_name, client_address, summary,"
    " opened_at, last_seen_at, occurrences, first_seq, last_seq, evidence, suspended,"
    " acknowledged_at, acknowledged_by, acknowledge_note, closed_at, closed_by, close_reason,"
    " reinstated_at, reinstated_by, reinstate_reason"
)
MAX_PAGE = 200


@dataclass(frozen=True)
class AlertFilter:
    status: str | None = None
    severity: str | None = None
    rule: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None


def _where(flt: AlertFilter, before: int | None, sql: Numbered) -> str:
    if flt.status is not None and flt.status not in STATUSES:
        raise BadUserInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if flt.severity is not None and flt.severity not in SEVERITIES:
        raise BadUserInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
    if flt.rule is not None and flt.rule not in RULE_SPECS:
        raise BadUserInput(f"rule must be one of {', '.join(RULE_SPECS)}", field="rule")
    terms = ["TRUE"]
    for column, value in (("status", flt.status), ("severity", flt.severity), ("rule", flt.rule)):
        if value is not None:
            terms.append(f"{column} = {sql.value(value)}")
    if flt.opened_from is not None:
        terms.append(f"opened_at >= {sql.value(flt.opened_from)}")
    if flt.opened_to is not None:
        terms.append(f"opened_at < {sql.value(flt.opened_to)}")
    if before is not None:
        terms.append(f"id < {sql.value(before)}")
    return " AND ".join(terms)


async def list_alerts(
    caller: Caller, flt: AlertFilter, *, first: int = 50, before: int | None = None
) -> list[Any]:
    """Newest first; ``before``: the id of the last alert of the previous page."""
    check_allowed(caller, "alarm.read")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    sql = Numbered()
    where = _where(flt, before, sql)
    return list(
        await raw_connection().fetch(
            f"SELECT {ALERT_COLUMNS} FROM alert WHERE {where}"
            f" ORDER BY id DESC LIMIT {sql.value(first)}",
            *sql.params,
        )
    )


async def get_alert(caller: Caller, alert_id: int) -> Any:
    check_allowed(caller, "alarm.read")
    row = await raw_connection().fetchrow(
        f"SELECT {ALERT_COLUMNS} FROM alert WHERE id = $1", alert_id
    )
    if row is None:
        raise NotFound(f"no alert {alert_id}", field="id")
    return row


async def deliveries_of(caller: Caller, alert_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Webhook attempts per alert, oldest first."""
    check_allowed(caller, "alarm.read")
    rows = await raw_connection().fetch(
        "SELECT alert_id, attempt, url, attempted_at, status_code, error, outcome"
        " FROM alert_delivery WHERE alert_id = ANY($1::bigint[]) ORDER BY alert_id, attempt",
        list(alert_ids),
    )
    found: dict[int, list[Any]] = {alert_id: [] for alert_id in alert_ids}
    for row in rows:
        found[row["alert_id"]].append(row)
    return found


def _text(value: str, field: str, *, required: bool) -> str | None:
    cleaned = " ".join(value.split()) if value else ""
    if not cleaned:
        if required:
            raise BadUserInput(f"{field} must not be empty", field=field)
        return None
    if len(cleaned) > 1000:
        raise BadUserInput(f"{field} must be at most 1,000 characters", field=field)
    return cleaned


async def _for_decision(caller: Caller, alert_id: int) -> Any:
    """The alert, locked, if the caller may decide it."""
    check_allowed(caller, "alarm.manage")
    row = await raw_connection().fetchrow(
        f"SELECT {ALERT_COLUMNS} FROM alert WHERE id = $1 FOR UPDATE", alert_id
    )
    if row is None:
        raise NotFound(f"no alert {alert_id}", field="id")
    if row["actor_kind"] == caller.kind and row["actor_id"] == caller.id:
        raise Forbidden("this alert is about you: another administrator must review it")
    return row


async def acknowledge_alert(caller: Caller, alert_id: int, note: str | None) -> Any:
    row = await _for_decision(caller, alert_id)
    if row["status"] != "open":
        raise Conflict(f"alert {alert_id} is {row['status']}, not open", field="id")
    return await raw_connection().fetchrow(
        "UPDATE alert SET status = 'acknowledged', acknowledged_at = now(),"
        f" acknowledged_by = $2, acknowledge_note = $3 WHERE id = $1 RETURNING {ALERT_COLUMNS}",
        alert_id,
        caller.id,
        _text(note or "", "note", required=False),
    )


async def _reinstate(caller: Caller, row: Any, reason: str) -> Actor | None:
    """Lift every suspension of the alert's actor; the actor, if any was lifted."""
    if row["actor_kind"] not in ("user", "app"):
        return None
    lifted = await raw_connection().fetch(
        "UPDATE alert SET reinstated_at = now(), reinstated_by = $3, reinstate_reason = $4"
        " WHERE suspended AND reinstated_at IS NULL AND actor_kind = $1 AND actor_id = $2"
        " RETURNING id",
        row["actor_kind"],
        row["actor_id"],
        caller.id,
        reason,
    )
    return (row["actor_kind"], row["actor_id"]) if lifted else None


async def close_alert(
    caller: Caller, alert_id: int, reason: str, *, reinstate: bool = False
) -> tuple[Any, Actor | None]:
    """Close with a reason; ``reinstate``: lift the actor's suspension too. Returns the
    alert and the actor whose suspension was lifted (to apply after commit)."""
    row = await _for_decision(caller, alert_id)
    checked = _text(reason, "reason", required=True)
    if row["status"] == "closed":
        raise Conflict(f"alert {alert_id} is already closed", field="id")
    lifted = await _reinstate(caller, row, checked or "") if reinstate else None
    closed = await raw_connection().fetchrow(
        "UPDATE alert SET status = 'closed', closed_at = now(), closed_by = $2,"
        f" close_reason = $3 WHERE id = $1 RETURNING {ALERT_COLUMNS}",
        alert_id,
        caller.id,
        checked,
    )
    return closed, lifted


async def reinstate_actor(caller: Caller, alert_id: int, reason: str) -> tuple[Any, Actor]:
    """Lift the suspension of the alert's actor (all of their suspending alerts)."""
    row = await _for_decision(caller, alert_id)
    checked = _text(reason, "reason", required=True)
    lifted = await _reinstate(caller, row, checked or "")
    if lifted is None:
        raise Conflict(f"the actor of alert {alert_id} is not suspended", field="alertId")
    return await get_alert(caller, alert_id), lifted
