"""Checking the values of related records: every problem names its field as the API
spells it (``occurredAt``, ``expectedAmount``).

Which columns a caller may set on each record type, which of them are required, and
how each is normalised. References to other rows (staff, contact persons, contracts)
are checked against the database by :mod:`dangan.services.records.writes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dangan.services.customers.inputs import api_name
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import InvalidIdentifier, normalize_email, normalize_mobile

CHANNELS = ("VISIT", "CALL", "MEETING", "EMAIL", "WECHAT")
STAGES = ("LEAD", "QUALIFIED", "PROPOSAL", "WON", "LOST")
CONTRACT_KINDS = ("CONTRACT", "COOPERATION")
CONTRACT_STATUSES = ("DRAFT", "ACTIVE", "EXPIRED", "TERMINATED")
NEED_KINDS = ("INTENTION", "PREFERENCE", "BEHAVIOUR")
SEVERITIES = ("LOW", "MEDIUM", "HIGH")
COMPLAINT_STATUSES = ("OPEN", "RESOLVED", "CLOSED")
_EARLIEST, _LATEST = date(1900, 1, 1), date(2100, 12, 31)

Check = Callable[[str, Any], Any]


def _bad(column: str, message: str) -> BadUserInput:
    return BadUserInput(f"{api_name(column)} {message}", field=api_name(column))


def text(low: int, high: int) -> Check:
    def check(column: str, value: Any) -> str | None:
        cleaned = " ".join(str(value).split()) if column not in _MULTILINE else str(value).strip()
        if not cleaned and low == 0:
            return None
        if not low <= len(cleaned) <= high:
            raise _bad(column, f"must be {max(low, 1)} to {high} characters")
        return cleaned

    return check


# Free text keeps its line breaks; names and titles are folded onto one line.
_MULTILINE = frozenset({"summary", "next_step", "description", "resolution", "comment"})


def choice(options: tuple[str, ...]) -> Check:
    def check(column: str, value: Any) -> str:
        if value not in options:
            raise _bad(column, f"must be one of {', '.join(options)}")
        return str(value)

    return check


def _number(column: str, value: Any, places: int) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise _bad(column, "must be a number") from exc
    if not number.is_finite() or number < 0 or number >= Decimal("1e15"):
        raise _bad(column, "must be between 0 and 10^15")
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise _bad(column, f"must have at most {places} decimals")
    return number.quantize(Decimal(1).scaleb(-places))


def amount(column: str, value: Any) -> Decimal:
    return _number(column, value, 2)


def quantity(column: str, value: Any) -> Decimal:
    number = _number(column, value, 3)
    if number == 0:
        raise _bad(column, "must be more than 0")
    return number


def day(column: str, value: Any) -> date:
    try:
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError as exc:
        raise _bad(column, "must be an ISO date such as 2024-05-01") from exc
    if not _EARLIEST <= parsed <= _LATEST:
        raise _bad(column, "must be between 1900-01-01 and 2100-12-31")
    return parsed


def moment(column: str, value: Any) -> datetime:
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise _bad(column, "must be an ISO time such as 2024-05-01T10:00:00+08:00") from exc
    if parsed.tzinfo is None:
        raise _bad(column, "must include a time zone, such as +08:00")
    if not _EARLIEST <= parsed.date() <= _LATEST:
        raise _bad(column, "must be between 1900-01-01 and 2100-12-31")
    return parsed


def identifier(normalize: Callable[[str], str]) -> Check:
    def check(column: str, value: Any) -> str | None:
        if not str(value).strip():
            return None
        try:
            return normalize(str(value))
        except InvalidIdentifier as exc:
            raise _bad(column, exc.reason) from exc

    return check


def record_id(column: str, value: Any) -> uuid.UUID:
    """A malformed id is reported like one of another customer (see writes)."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise _bad(column, "is not a record of this customer") from exc


def member_id(column: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _bad(column, "is not an active member of this tenant")
    return value


def flag(column: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(column, "must be true or false")
    return value


def score(column: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise _bad(column, "must be a whole number from 1 to 5")
    return value


def parties(column: str, value: Any) -> list[str]:
    names = [" ".join(str(name).split()) for name in value]
    if len(names) > 20 or any(not 1 <= len(name) <= 200 for name in names):
        raise _bad(column, "must be at most 20 names of 1 to 200 characters")
    return names


@dataclass(frozen=True)
class RecordRules:
    """What a caller may set on one record type."""

    checks: dict[str, Check]
    required: frozenset[str]
    updatable: frozenset[str] = frozenset()


RULES: dict[str, RecordRules] = {
    "contact_person": RecordRules(
        {
            "name": text(1, 100),
            "title": text(0, 100),
            "phone": identifier(normalize_mobile),
            "email": identifier(normalize_email),
            "wechat": text(0, 50),
            "is_primary": flag,
        },
        frozenset({"name"}),
    ),
    "communication": RecordRules(
        {
            "channel": choice(CHANNELS),
            "occurred_at": moment,
            "staff_id": member_id,
            "contact_person_id": record_id,
            "summary": text(1, 4000),
            "next_step": text(0, 1000),
            "next_step_due": day,
        },
        frozenset({"channel", "occurred_at", "summary"}),
    ),
    "opportunity": RecordRules(
        {
            "title": text(1, 200),
            "stage": choice(STAGES),
            "expected_amount": amount,
            "expected_close": day,
        },
        frozenset({"title"}),
        frozenset({"stage", "expected_amount", "expected_close"}),
    ),
    "purchase": RecordRules(
        {
            "order_no": text(1, 50),
            "product": text(1, 200),
            "quantity": quantity,
            "amount": amount,
            "cost": amount,
            "purchased_on": day,
        },
        frozenset({"order_no", "product", "quantity", "amount", "purchased_on"}),
    ),
    "contract": RecordRules(
        {
            "number": text(1, 50),
            "kind": choice(CONTRACT_KINDS),
            "title": text(1, 200),
            "parties": parties,
            "signed_on": day,
            "starts_on": day,
            "ends_on": day,
            "amount": amount,
            "status": choice(CONTRACT_STATUSES),
        },
        frozenset({"number", "title"}),
        frozenset({"status"}),
    ),
    "payment_record": RecordRules(
        {
            "contract_id": record_id,
            "due_on": day,
            "amount": amount,
            "paid_amount": amount,
            "paid_on": day,
        },
        frozenset({"due_on", "amount"}),
    ),
    "customer_need": RecordRules(
        {"kind": choice(NEED_KINDS), "description": text(1, 2000), "recorded_at": moment},
        frozenset({"kind", "description"}),
    ),
    "complaint": RecordRules(
        {
            "received_at": moment,
            "channel": text(0, 50),
            "summary": text(1, 4000),
            "severity": choice(SEVERITIES),
            "status": choice(COMPLAINT_STATUSES),
            "resolution": text(0, 4000),
        },
        frozenset({"received_at", "summary"}),
        frozenset({"status", "resolution"}),
    ),
    "satisfaction_survey": RecordRules(
        {"surveyed_on": day, "score": score, "comment": text(0, 2000)},
        frozenset({"surveyed_on", "score"}),
    ),
}

# Allowed moves of a record's status: the later states are final.
TRANSITIONS: dict[tuple[str, str], dict[str, frozenset[str]]] = {
    ("contract", "status"): {
        "DRAFT": frozenset({"ACTIVE", "TERMINATED"}),
        "ACTIVE": frozenset({"EXPIRED", "TERMINATED"}),
    },
    ("complaint", "status"): {
        "OPEN": frozenset({"RESOLVED", "CLOSED"}),
        "RESOLVED": frozenset({"OPEN", "CLOSED"}),
    },
    ("opportunity", "stage"): {
        "LEAD": frozenset({"QUALIFIED", "PROPOSAL", "WON", "LOST"}),
        "QUALIFIED": frozenset({"LEAD", "PROPOSAL", "WON", "LOST"}),
        "PROPOSAL": frozenset({"LEAD", "QUALIFIED", "WON", "LOST"}),
    },
}

# Columns that always hold a value (a status can change, never be cleared).
_SET = frozenset({"status", "stage"})


def check_record_values(
    table: str, values: dict[str, Any], *, partial: bool = False
) -> dict[str, Any]:
    """Validate and normalise ``values`` for a new record (or, ``partial``, a change of
    the updatable columns); raises BadUserInput naming the field."""
    rules = RULES[table]
    allowed = rules.updatable if partial else frozenset(rules.checks)
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if partial and not values:
        raise BadUserInput("nothing to change: give at least one field", field="input")
    cleaned: dict[str, Any] = {}
    for column, value in values.items():
        cleaned[column] = None if value is None else rules.checks[column](column, value)
        if cleaned[column] is None and (column in rules.required or (partial and column in _SET)):
            raise _bad(column, "is required")
    missing = sorted(rules.required - {k for k, v in cleaned.items() if v is not None})
    if missing and not partial:
        raise _bad(missing[0], "is required")
    starts, ends = cleaned.get("starts_on"), cleaned.get("ends_on")
    if starts is not None and ends is not None and ends < starts:
        raise _bad("ends_on", "must not be before startsOn")
    return cleaned


def check_transition(table: str, column: str, old: str, new: str) -> None:
    """A status may only move along TRANSITIONS (staying put is fine)."""
    moves = TRANSITIONS.get((table, column))
    if moves is None or old == new:
        return
    if new not in moves.get(old, frozenset()):
        raise _bad(column, f"cannot change from {old} to {new}")
