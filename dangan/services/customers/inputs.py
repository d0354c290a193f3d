"""Checking customer input: every problem names its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dangan.services.errors import BadUserInput
from dangan.services.identifiers import (
    InvalidIdentifier,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
)
from dangan.services.regions import REGIONS

KINDS = ("INDIVIDUAL", "ENTERPRISE")
TIERS = ("KEY", "ORDINARY", "POTENTIAL")
REQUIRED = frozenset({"kind", "name", "tier"})
_TEXT_LIMITS = {"name": 200, "address": 500}
_NORMALIZERS = {
    "phone": normalize_mobile,
    "email": normalize_email,
    "id_number": normalize_id_number,
    "uscc": normalize_uscc,
}
# GraphQL names of the columns, for error messages that name the field the caller sent.
FIELD_NAMES = {"id_number": "idNumber", "owner_id": "ownerId", "department_id": "departmentId"}


@dataclass(frozen=True)
class CustomerChanges:
    """Normalised column values to write (only the keys the caller sent)."""

    values: dict[str, Any]


def _field(column: str) -> str:
    return FIELD_NAMES.get(column, column)


def _clean_text(column: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if column == "name" and not value:
        raise BadUserInput("name must not be empty", field="name")
    limit = _TEXT_LIMITS.get(column)
    if limit and len(value) > limit:
        raise BadUserInput(f"{column} must be at most {limit} characters", field=_field(column))
    return value or None


def check_customer_values(values: dict[str, Any]) -> CustomerChanges:
    """Validate and normalise the given columns; raises BadUserInput naming the field."""
    cleaned: dict[str, Any] = {}
    for column, value in values.items():
        if value is None and column in REQUIRED:
            raise BadUserInput(f"{_field(column)} cannot be empty", field=_field(column))
        if column in _NORMALIZERS:
            if value is None or (isinstance(value, str) and not value.strip()):
                cleaned[column] = None
                continue
            try:
                cleaned[column] = _NORMALIZERS[column](value)
            except InvalidIdentifier as exc:
                raise BadUserInput(f"{_field(column)}: {exc.reason}", field=_field(column)) from exc
        elif column in ("name", "address"):
            cleaned[column] = _clean_text(column, value)
        elif column == "region":
            if value is not None and value not in REGIONS:
                raise BadUserInput(
                    "region must be a province-level region such as 浙江省 or 北京市",
                    field="region",
                )
            cleaned[column] = value
        elif column == "kind":
            if value not in KINDS:
                raise BadUserInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
            cleaned[column] = value
        elif column == "tier":
            if value not in TIERS:
                raise BadUserInput(f"tier must be one of {', '.join(TIERS)}", field="tier")
            cleaned[column] = value
        else:
            cleaned[column] = value
    return CustomerChanges(cleaned)


def check_kind_fits(kind: str, row: dict[str, Any]) -> None:
    """Individuals carry an ID number and no USCC; enterprises the other way round."""
    if kind == "INDIVIDUAL" and row.get("uscc"):
        raise BadUserInput("uscc is only for enterprise customers", field="uscc")
    if kind == "ENTERPRISE" and row.get("id_number"):
        raise BadUserInput("idNumber is only for individual customers", field="idNumber")
