"""Checking customer input: every problem names its field (as the API spells it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from dangan.services.cities import city_in_region, is_city
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import (
    InvalidIdentifier,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
)
from dangan.services.regions import REGIONS

KINDS = ("INDIVIDUAL", "ENTERPRISE", "POTENTIAL", "PARTNER")
TIERS = ("KEY", "ORDINARY", "POTENTIAL")
GENDERS = ("MALE", "FEMALE")
CREDIT_RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D")
SCALES = ("MICRO", "SMALL", "MEDIUM", "LARGE")
COMPETITION_RISKS = ("LOW", "MEDIUM", "HIGH")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
REQUIRED = frozenset({"kind", "name", "tier"})
_TEXT_LIMITS = {
    "name": 200,
    "address": 500,
    "wechat": 50,
    "remarks": 2000,
    "legal_representative": 100,
}
_NORMALIZERS = {
    "phone": normalize_mobile,
    "email": normalize_email,
    "id_number": normalize_id_number,
    "uscc": normalize_uscc,
}
_CHOICES = {
    "kind": KINDS,
    "tier": TIERS,
    "gender": GENDERS,
    "credit_rating": CREDIT_RATINGS,
    "scale": SCALES,
    "competition_risk": COMPETITION_RISKS,
}


def api_name(column: str) -> str:
    """``id_number`` → ``idNumber``: how the API names a column."""
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


class _FieldNames(dict[str, str]):
    def __missing__(self, column: str) -> str:
        return api_name(column)


FIELD_NAMES = _FieldNames()


@dataclass(frozen=True)
class CustomerChanges:
    """Normalised column values to write (only the keys the caller sent)."""

    values: dict[str, Any]


def _bad(column: str, message: str) -> BadUserInput:
    return BadUserInput(message, field=api_name(column))


def _text(column: str, value: Any) -> str | None:
    value = " ".join(str(value).split())
    if column == "name" and not value:
        raise _bad(column, "name must not be empty")
    limit = _TEXT_LIMITS.get(column)
    if limit and len(value) > limit:
        raise _bad(column, f"{column} must be at most {limit} characters")
    return value or None


def _amount(column: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise _bad(column, f"{api_name(column)} must be a number") from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e16"):
        raise _bad(column, f"{api_name(column)} must be between 0 and 10^16")
    return amount.quantize(Decimal("0.01"))


def _birthday(column: str, value: Any) -> date:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError as exc:
        raise _bad(column, "birthday must be a date such as 1990-03-07") from exc
    if not date(1900, 1, 1) <= day <= date.today():
        raise _bad(column, "birthday must be between 1900-01-01 and today")
    return day


def _tags(column: str, value: Any) -> list[str]:
    tags = [" ".join(str(tag).split()) for tag in value]
    if len(tags) > 20 or any(not tag or len(tag) > 30 for tag in tags):
        raise _bad(column, "tags: at most 20, each 1 to 30 characters")
    if any("," in tag for tag in tags):
        # The change history keeps a list as comma-separated text.
        raise _bad(column, "tags must not contain commas")
    return sorted(set(tags))


def _choice(column: str, value: Any) -> str:
    if value not in _CHOICES[column]:
        raise _bad(column, f"{api_name(column)} must be one of {', '.join(_CHOICES[column])}")
    return str(value)


def _region(column: str, value: Any) -> str:
    if value not in REGIONS:
        raise _bad(column, "region must be a province-level region such as 浙江省 or 北京市")
    return str(value)


def _city(column: str, value: Any) -> str:
    if not is_city(str(value)):
        raise _bad(column, "city must be a prefecture-level city such as 杭州市 (see regions)")
    return str(value)


def _code(column: str, value: Any) -> str:
    code = str(value).strip()
    if not _CODE.match(code):
        raise _bad(column, f"{api_name(column)} must be a code such as RETAIL (upper case)")
    return code


def _potential(column: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise _bad(column, "potential must be a whole number from 1 to 5")
    return value


def _identifier(column: str, value: Any) -> str | None:
    if not str(value).strip():
        return None
    try:
        return _NORMALIZERS[column](str(value))
    except InvalidIdentifier as exc:
        raise _bad(column, f"{api_name(column)}: {exc.reason}") from exc


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(_NORMALIZERS, _identifier),
    **dict.fromkeys(_TEXT_LIMITS, _text),
    **dict.fromkeys(_CHOICES, _choice),
    "region": _region,
    "city": _city,
    "category": _code,
    "industry": _code,
    "building": _code,
    "potential": _potential,
    "payment_capacity": _amount,
    "annual_revenue": _amount,
    "registered_capital": _amount,
    "birthday": _birthday,
    "tags": _tags,
}


def check_customer_values(values: dict[str, Any]) -> CustomerChanges:
    """Validate and normalise the given columns; raises BadUserInput naming the field."""
    cleaned: dict[str, Any] = {}
    for column, value in values.items():
        if value is None:
            if column in REQUIRED:
                raise _bad(column, f"{api_name(column)} cannot be empty")
            cleaned[column] = [] if column == "tags" else None
            continue
        check = _CHECKS.get(column)
        cleaned[column] = check(column, value) if check else value
    return CustomerChanges(cleaned)


def check_kind_fits(kind: str, row: dict[str, Any]) -> None:
    """Individuals carry an ID number and no USCC; enterprises the other way round;
    potential customers and partners may be either, so either identifier, not both."""
    if kind == "INDIVIDUAL" and row.get("uscc"):
        raise BadUserInput("uscc is only for enterprise customers", field="uscc")
    if kind == "ENTERPRISE" and row.get("id_number"):
        raise BadUserInput("idNumber is only for individual customers", field="idNumber")
    if kind in ("POTENTIAL", "PARTNER") and row.get("uscc") and row.get("id_number"):
        raise BadUserInput(
            "a potential customer or partner is a person (idNumber) or an enterprise"
            " (uscc), not both",
            field="uscc",
        )


def check_city_fits(row: dict[str, Any]) -> None:
    """A city must belong to the region, when both are known."""
    city, region = row.get("city"), row.get("region")
    if city and region and not city_in_region(city, region):
        raise BadUserInput(f"city {city} is not in {region}", field="city")
