"""Classification dictionaries (分类): the values a customer's kind, tier, category,
industry and building may take, edited by the tenant's administrators without code.

Kinds and tiers are fixed by the regulations (code depends on them): their values may be
renamed and retired, never added. Category, industry and building are the tenant's own.
A retired value stays on the records that have it (readable, and kept when a record is
saved unchanged) but can no longer be set; restoring makes it settable again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Conflict, NotFound
from dangan.tenants.scope import raw_connection

# Customer columns whose values are codes of a dictionary (one-word names: the column is
# also the API's name of the field).
DIMENSIONS = ("kind", "tier", "category", "industry", "building")
EDITABLE_DIMENSIONS = ("category", "industry", "building")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_COLUMNS = "dimension, code, label, builtin, position, retired_at, created_at"


def _check_dimension(dimension: str) -> None:
    if dimension not in DIMENSIONS:
        raise BadUserInput(f"dimension must be one of {', '.join(DIMENSIONS)}", field="dimension")


def _check_label(label: str) -> str:
    cleaned = " ".join(label.split())
    if not 1 <= len(cleaned) <= 100:
        raise BadUserInput("label must be 1 to 100 characters", field="label")
    return cleaned


async def list_values(caller: Caller, dimension: str, include_retired: bool = False) -> list[Any]:
    """The values of one dimension in their order (retired ones only when asked)."""
    check_allowed(caller, "customer.read")
    _check_dimension(dimension)
    retired = "" if include_retired else " AND retired_at IS NULL"
    return list(
        await raw_connection().fetch(
            f"SELECT {_COLUMNS} FROM classification_value WHERE dimension = $1{retired}"
            " ORDER BY position, code",
            dimension,
        )
    )


async def add_value(caller: Caller, dimension: str, code: str, label: str) -> Any:
    """A new value of category, industry or building (administrators only)."""
    check_allowed(caller, "classification.manage")
    _check_dimension(dimension)
    if dimension not in EDITABLE_DIMENSIONS:
        raise BadUserInput(
            f"{dimension} values are fixed by the regulations: rename or retire them",
            field="dimension",
        )
    if not _CODE.match(code):
        raise BadUserInput(
            "code must be upper-case letters, digits and _ (at most 40), starting with a letter",
            field="code",
        )
    cleaned = _check_label(label)
    async with raw_connection().savepoint():
        row = await raw_connection().fetchrow(
            "INSERT INTO classification_value (dimension, code, label, position)"
            " SELECT $1, $2, $3, COALESCE(max(position), 0) + 1"
            " FROM classification_value WHERE dimension = $1"
            f" ON CONFLICT DO NOTHING RETURNING {_COLUMNS}",
            dimension,
            code,
            cleaned,
        )
    if row is None:
        raise Conflict(f"{dimension} already has a value {code}", field="code")
    return row


async def _change(caller: Caller, dimension: str, code: str, assignment: str, *args: Any) -> Any:
    check_allowed(caller, "classification.manage")
    _check_dimension(dimension)
    async with raw_connection().savepoint():
        row = await raw_connection().fetchrow(
            f"UPDATE classification_value SET {assignment}"
            f" WHERE dimension = $1 AND code = $2 RETURNING {_COLUMNS}",
            dimension,
            code,
            *args,
        )
    if row is None:
        raise NotFound(f"{dimension} has no value {code}", field="code")
    return row


async def rename_value(caller: Caller, dimension: str, code: str, label: str) -> Any:
    """A new label for a value (its code, which records hold, stays)."""
    return await _change(caller, dimension, code, "label = $3", _check_label(label))


async def retire_value(caller: Caller, dimension: str, code: str) -> Any:
    """No longer settable; records that have it keep it. Retiring twice is harmless."""
    return await _change(caller, dimension, code, "retired_at = COALESCE(retired_at, now())")


async def restore_value(caller: Caller, dimension: str, code: str) -> Any:
    """Settable again."""
    return await _change(caller, dimension, code, "retired_at = NULL")


async def check_active_values(values: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Every classified column being SET to a new value must name an active value of its
    dictionary; keeping the value a record already has is fine even if it was retired.
    The error names the field only (the caller lists values with classificationValues)."""
    wanted = [
        (column, values[column])
        for column in DIMENSIONS
        if values.get(column) is not None and values[column] != current.get(column)
    ]
    if not wanted:
        return
    rows = await raw_connection().fetch(
        "SELECT dimension, code FROM classification_value"
        " WHERE retired_at IS NULL AND (dimension, code) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [column for column, _ in wanted],
        [str(code) for _, code in wanted],
    )
    active = {(row["dimension"], row["code"]) for row in rows}
    for column, code in wanted:
        if (column, str(code)) not in active:
            raise BadUserInput(
                f"{column} {code} is not an active value (see classificationValues)",
                field=column,
            )


async def labels_of(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Labels of (dimension, code) pairs, retired ones included (one query)."""
    rows = await raw_connection().fetch(
        "SELECT dimension, code, label FROM classification_value WHERE (dimension, code) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [dimension for dimension, _ in keys],
        [code for _, code in keys],
    )
    return {(row["dimension"], row["code"]): row["label"] for row in rows}
