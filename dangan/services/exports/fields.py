"""Which fields an export holds: those asked for, or every field the caller can see.

A field the caller can't see on any customer is "unknown" to them, word for word as in
``customers(where: ...)``: asking for it is the same BAD_USER_INPUT as asking for a
field that doesn't exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from dangan.authz.access import CustomerAccess
from dangan.services.customers.conditions import sees_any, shown_anywhere, unknown_field
from dangan.services.customers.inputs import api_name
from dangan.services.errors import BadUserInput

_COLUMNS = (
    "id",
    "kind",
    "name",
    "phone",
    "email",
    "id_number",
    "uscc",
    "address",
    "region",
    "tier",
    "owner_id",
    "department_id",
    "wechat",
    "birthday",
    "gender",
    "credit_rating",
    "payment_capacity",
    "annual_revenue",
    "remarks",
    "tags",
    "consents_to_sharing",
    "category",
    "industry",
    "building",
    "city",
    "legal_representative",
    "scale",
    "registered_capital",
    "potential",
    "competition_risk",
    "status",
    "rating_grade",
    "rating_score",
    "created_at",
    "updated_at",
)
# API field name → column, in the order of an export's columns.
EXPORT_FIELDS: dict[str, str] = {api_name(column): column for column in _COLUMNS}


async def _seen(access: CustomerAccess, column: str) -> bool:
    if column == "id":
        return True
    field = access.field(column)
    if field is None or field.never_shown:
        return False
    return await shown_anywhere(access, field.shown) or not await sees_any(access)


async def export_fields(access: CustomerAccess, names: Sequence[str] | None) -> list[str]:
    """The API names of the export's fields; BAD_USER_INPUT naming ``fields[i]`` for a
    field that doesn't exist or is hidden from the caller everywhere."""
    if names is None:
        return [name for name, column in EXPORT_FIELDS.items() if await _seen(access, column)]
    if not names:
        raise BadUserInput("give at least one field, or leave fields out", field="fields")
    chosen: list[str] = []
    for index, name in enumerate(names):
        column = EXPORT_FIELDS.get(name)
        if column is None or not await _seen(access, column):
            raise unknown_field(name, f"fields[{index}]")
        if name not in chosen:
            chosen.append(name)
    return chosen
