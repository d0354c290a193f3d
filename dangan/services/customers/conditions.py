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

from dangan.authz.access import CustomerAccess, FieldAccess
from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import (
    InvalidIdentifier,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
)
from dangan.tenants.scope import raw_connection

OPERATORS = ("eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "is_null")
_SQL = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _int32(raw: str) -> int:
    value = int(raw)
    if not -(2**31) <= value < 2**31:
        raise ValueError(raw)  # no such id: a clear BAD_USER_INPUT, not a database error
    return value


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
    "owner_id": _int32,
    "department_id": _int32,
    "version": _int32,
    "consents_to_sharing": _boolean,
    "created_at": datetime.fromisoformat,
    "updated_at": datetime.fromisoformat,
    "birthday": date.fromisoformat,
    "payment_capacity": float,
    "annual_revenue": float,
    "status": str,
    "status_changed_at": datetime.fromisoformat,
    "category": str,
    "industry": str,
    "building": str,
    "city": str,
    "legal_representative": str,
    "scale": str,
    "registered_capital": float,
    "potential": _int32,
    "competition_risk": str,
    "rating_grade": str,
    "rating_score": float,
    "rated_at": datetime.fromisoformat,
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
        "status",
        "category",
        "industry",
        "building",
        "city",
        "legal_representative",
        "scale",
        "competition_risk",
        "rating_grade",
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


async def shown_anywhere(access: CustomerAccess, predicate: Predicate) -> bool:
    """Whether the predicate holds on at least one customer the caller can see.

    A field that may reach a caller only through shares they don't have is hidden from
    them everywhere: filtering or sorting on it must answer "unknown field", like a
    field that doesn't exist, rather than quietly matching nothing.
    """
    if predicate.never:
        return False
    if predicate.always:
        return True
    key = (predicate.sql, predicate.params)
    if key not in access.memo:
        sql = Numbered()
        where = sql.add(all_of([access.rows, predicate]))
        access.memo[key] = await raw_connection().fetchval(
            f"SELECT EXISTS (SELECT 1 FROM customer c WHERE {where})", *sql.params
        )
    return bool(access.memo[key])


async def sees_any(access: CustomerAccess) -> bool:
    """Whether the caller sees at least one customer (asked once per request)."""
    if "sees_any" not in access.memo:
        sql = Numbered()
        access.memo["sees_any"] = await raw_connection().fetchval(
            f"SELECT EXISTS (SELECT 1 FROM customer c WHERE {sql.add(access.rows)})", *sql.params
        )
    return bool(access.memo["sees_any"])


async def readable_field(
    access: CustomerAccess,
    name: str,
    column: str | None,
    label: str,
    *,
    exact: bool = False,
    masked_label: str | None = None,
) -> FieldAccess:
    """The field, if the caller can read it in full (or, for an exact match, test it
    where the policy grants "match") somewhere; else the error a caller should get."""
    field = access.field(column) if column in PARSERS else None
    if column is None or field is None:
        raise unknown_field(name, label)
    usable = field.exact_match if exact else field.full
    if await shown_anywhere(access, usable):
        return field
    if not usable.never and not await sees_any(access):
        return field  # sees no customer at all: the filter simply matches nothing
    if await shown_anywhere(access, field.shown):
        raise BadUserInput(
            f"{name} is masked for you: only exact matches the policy allows",
            field=masked_label or label,
        )
    raise unknown_field(name, label)


async def condition_predicate(access: CustomerAccess, condition: Condition) -> Predicate:
    if condition.op not in OPERATORS:
        raise BadUserInput(f"unknown operator {condition.op!r}", field=f"{condition.label}.op")
    field = await readable_field(
        access,
        condition.name,
        condition.column,
        f"{condition.label}.field",
        exact=condition.op == "eq",
        masked_label=f"{condition.label}.op",
    )
    column = field.column
    ref = f"c.{column}"
    visible = field.exact_match if condition.op == "eq" else field.full
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
