"""Filter conditions on customer fields, checked against what the caller may see.

Each condition is ANDed with the field's visibility for this caller: a row whose value
the caller can't read in full never matches (exact matches may also test masked values
where the policy grants "match"). So a filter can narrow what the caller sees but never
reveal what they don't. A field they can never see is reported as unknown, word for
word like a field that doesn't exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dangan.authz.access import CustomerAccess
from dangan.authz.predicates import Predicate, all_of
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import (
    InvalidIdentifier,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
)

OPERATORS = ("eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "is_null")
_SQL = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _boolean(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError(raw)
    return raw.lower() == "true"


def _identifier(normalize: Callable[[str], str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        try:
            return normalize(raw)
        except InvalidIdentifier:
            return raw.strip()  # matches nothing rather than failing: not an oracle

    return parse


# Filterable columns → how a value given as text becomes a SQL value.
PARSERS: dict[str, Callable[[str], Any]] = {
    "kind": str,
    "name": str,
    "region": str,
    "tier": str,
    "address": str,
    "wechat": str,
    "gender": str,
    "credit_rating": str,
    "remarks": str,
    "phone": _identifier(normalize_mobile),
    "email": _identifier(normalize_email),
    "id_number": _identifier(normalize_id_number),
    "uscc": _identifier(normalize_uscc),
    "owner_id": int,
    "department_id": int,
    "version": int,
    "consents_to_sharing": _boolean,
    "created_at": datetime.fromisoformat,
    "updated_at": datetime.fromisoformat,
    "birthday": date.fromisoformat,
    "payment_capacity": float,
    "annual_revenue": float,
}
TEXT_COLUMNS = frozenset(
    {
        "kind",
        "name",
        "region",
        "tier",
        "address",
        "wechat",
        "gender",
        "credit_rating",
        "remarks",
        "phone",
        "email",
        "id_number",
        "uscc",
    }
)


@dataclass(frozen=True)
class Condition:
    name: str  # as the caller wrote it, for messages
    column: str | None  # None: no such field
    op: str
    values: tuple[str, ...]
    label: str  # where it was given, e.g. "where[0]"


def unknown_field(name: str, label: str) -> BadUserInput:
    """The one answer for "no such field" and "a field hidden from you"."""
    return BadUserInput(f"unknown field {name!r}", field=label)


def _parse(condition: Condition, column: str) -> list[Any]:
    try:
        return [PARSERS[column](raw) for raw in condition.values]
    except (ValueError, TypeError) as exc:
        raise BadUserInput(
            f"{condition.label}: {condition.name} does not take the value given",
            field=f"{condition.label}.value",
        ) from exc


def condition_predicate(access: CustomerAccess, condition: Condition) -> Predicate:
    column = condition.column
    field = access.field(column) if column in PARSERS else None
    if column is None or field is None or (field.never_shown and field.exact_match.never):
        raise unknown_field(condition.name, f"{condition.label}.field")
    if condition.op not in OPERATORS:
        raise BadUserInput(f"unknown operator {condition.op!r}", field=f"{condition.label}.op")
    ref = f"c.{column}"
    visible = field.exact_match if condition.op == "eq" else field.full
    if visible.never:
        raise BadUserInput(
            f"{condition.name} is masked for you: only exact matches the policy allows",
            field=f"{condition.label}.op",
        )
    if condition.op == "is_null":
        return all_of([visible, Predicate(f"{ref} IS NULL")])
    values = _parse(condition, column)
    if condition.op == "in":
        if not 1 <= len(values) <= 100:
            raise BadUserInput("in takes 1 to 100 values", field=f"{condition.label}.values")
        return all_of([visible, Predicate(f"{ref} = ANY(?)", (values,))])
    if len(values) != 1:
        raise BadUserInput(f"{condition.op} takes one value", field=f"{condition.label}.value")
    if condition.op == "contains":
        if column not in TEXT_COLUMNS:
            raise BadUserInput(
                f"contains works on text fields, not {condition.name}",
                field=f"{condition.label}.op",
            )
        escaped = str(values[0]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return all_of([visible, Predicate(f"{ref} ILIKE ?", (f"%{escaped}%",))])
    return all_of([visible, Predicate(f"{ref} {_SQL[condition.op]} ?", (values[0],))])
