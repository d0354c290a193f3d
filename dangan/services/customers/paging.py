"""Keyset pagination: opaque cursors carrying the sort key and id of the last row."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from dangan.services.errors import BadUserInput

# Sortable columns → the value that stands for "no value / not shown to you", so that
# hidden values sort together and keyset comparisons never meet NULL.
SORTABLE: dict[str, str] = {
    "created_at": "'-infinity'::timestamptz",
    "updated_at": "'-infinity'::timestamptz",
    "name": "''",
    "region": "''",
    "tier": "''",
    "kind": "''",
    "status": "''",
    "category": "''",
    "industry": "''",
    "city": "''",
}
_TIMESTAMPS = frozenset({"created_at", "updated_at"})


@dataclass(frozen=True)
class Order:
    field: str = "created_at"
    descending: bool = False


def encode_cursor(order: Order, sort_value: Any, row_id: Any) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = orjson.dumps([order.field, value, str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(order: Order, cursor: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        field, value, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
        if field != order.field or not isinstance(row_id, str):
            raise ValueError(field)
        if field in _TIMESTAMPS:
            value = datetime.fromisoformat(value) if value != "-infinity" else value
        elif not isinstance(value, str):
            raise ValueError(value)
        return value, row_id
    except (ValueError, TypeError) as exc:
        raise BadUserInput(
            "after is not a cursor of this listing and ordering", field="after"
        ) from exc
