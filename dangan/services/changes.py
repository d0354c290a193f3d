"""The change record (修改须记录): every change to a customer or one of its records, field
by field, with who, when and why — written in the transaction of the change itself.

Values are kept as text (``None`` stays ``None``); readers mask them as the viewer's
policy says, by the field's sensitivity class (see ``customerHistory``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dangan.services.callers import Caller
from dangan.tenants.scope import raw_connection


def as_text(value: Any) -> str | None:
    """How a value is stored in the history: ISO dates, plain decimals, sorted lists."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(sorted(str(item) for item in value))
    return str(value)


async def record_change(
    caller: Caller,
    customer_id: uuid.UUID | str,
    action: str,
    fields: Mapping[str, tuple[Any, Any]],
    *,
    record_type: str = "customer",
    record_id: uuid.UUID | str | None = None,
    reason: str | None = None,
    status: str = "APPLIED",
    base_version: int | None = None,
) -> int:
    """Write one change (``fields``: column → (old, new)) and return its id. Call it
    inside the transaction of the change, so both land or neither does."""
    conn = raw_connection()
    change_id: int = await conn.fetchval(
        "INSERT INTO customer_change (customer_id, action, record_type, record_id, status,"
        " reason, actor_kind, actor_id, base_version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        uuid.UUID(str(customer_id)),
        action,
        record_type,
        uuid.UUID(str(record_id)) if record_id is not None else None,
        status,
        reason,
        caller.kind,
        caller.id,
        base_version,
    )
    rows = [(change_id, name, as_text(old), as_text(new)) for name, (old, new) in fields.items()]
    if rows:
        await conn.executemany(
            "INSERT INTO customer_change_field (change_id, field, old_value, new_value)"
            " VALUES ($1, $2, $3, $4)",
            rows,
        )
    return change_id
