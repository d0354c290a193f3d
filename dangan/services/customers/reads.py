"""Reading customers: one SQL query per list, only the columns asked for.

Rows come back as asyncpg records (plain mappings); the API layer shapes them. All SQL
here runs inside the caller's tenant transaction, so it names no schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.customers.paging import Order, decode_cursor, encode_cursor
from dangan.services.errors import BadUserInput, NotFound
from dangan.tenants.scope import raw_connection

COLUMNS: tuple[str, ...] = (
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
    "created_at",
    "updated_at",
    "version",
)
_COLUMN_SET = frozenset(COLUMNS)


@dataclass(frozen=True)
class CustomerFilter:
    kind: str | None = None
    tier: str | None = None
    region: str | None = None
    owner_id: int | None = None
    department_id: int | None = None
    search: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    has_next: bool
    has_previous: bool
    total: int | None
    order: Order

    def cursor(self, row: Any) -> str:
        return encode_cursor(self.order, row[self.order.field], row["id"])


def parse_customer_id(raw: str) -> uuid.UUID:
    """A malformed id is just an id that matches nothing: NOT_FOUND, like a missing one."""
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound("no customer with this id") from exc


def _select_list(columns: Iterable[str]) -> str:
    wanted = set(columns) | {"id"}
    unknown = wanted - _COLUMN_SET
    if unknown:
        raise ValueError(f"unknown customer columns {sorted(unknown)}")
    return ", ".join(column for column in COLUMNS if column in wanted)


class _Where:
    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        """Append a clause; each ``?`` becomes the next positional parameter."""
        pieces = template.split("?")
        sql = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            self.params.append(value)
            sql += f"${len(self.params)}{piece}"
        self.clauses.append(sql)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_where(flt: CustomerFilter) -> _Where:
    where = _Where()
    for column in ("kind", "tier", "region", "owner_id", "department_id"):
        value = getattr(flt, column)
        if value is not None:
            where.add(f"{column} = ?", value)
    if flt.search is not None:
        term = flt.search.strip()
        if not 1 <= len(term) <= 100:
            raise BadUserInput("search must be 1 to 100 characters", field="search")
        where.add("name ILIKE ?", f"%{_escape_like(term)}%")
    if flt.created_after is not None:
        where.add("created_at >= ?", flt.created_after)
    if flt.created_before is not None:
        where.add("created_at < ?", flt.created_before)
    return where


async def list_customers(
    caller: Caller,
    *,
    first: int,
    after: str | None = None,
    flt: CustomerFilter | None = None,
    order: Order | None = None,
    columns: Sequence[str] = COLUMNS,
    with_total: bool = False,
) -> Page:
    check_allowed(caller, "customer.read")
    order = order or Order()
    where = _filter_where(flt or CustomerFilter())
    conn = raw_connection()
    total = None
    if with_total:
        total = await conn.fetchval(
            f"SELECT count(*) FROM customer WHERE {where.sql()}", *where.params
        )
    if after is not None:
        value, row_id = decode_cursor(order, after)
        op = "<" if order.descending else ">"
        where.add(f"({order.field}, id) {op} (?, ?)", value, parse_customer_id(row_id))
    direction = "DESC" if order.descending else "ASC"
    select = _select_list([*columns, order.field])
    rows = await conn.fetch(
        f"SELECT {select} FROM customer WHERE {where.sql()}"
        f" ORDER BY {order.field} {direction}, id {direction} LIMIT {int(first) + 1}",
        *where.params,
    )
    return Page(
        rows=rows[:first],
        has_next=len(rows) > first,
        has_previous=after is not None,
        total=total,
        order=order,
    )


async def get_customer_for_caller(
    caller: Caller, customer_id: str, columns: Sequence[str] = COLUMNS
) -> Any:
    """The customer, or NOT_FOUND — the same for a missing id and an invisible one."""
    check_allowed(caller, "customer.read")
    uid = parse_customer_id(customer_id)
    row = await raw_connection().fetchrow(
        f"SELECT {_select_list(columns)} FROM customer WHERE id = $1", uid
    )
    if row is None:
        raise NotFound("no customer with this id")
    return row


async def members_by_id(ids: Sequence[int]) -> dict[int, Any]:
    rows = await raw_connection().fetch(
        "SELECT identity_id, email, display_name, roles, department_id"
        " FROM member WHERE identity_id = ANY($1::int[])",
        list(ids),
    )
    return {row["identity_id"]: row for row in rows}


async def departments_by_id(ids: Sequence[int]) -> dict[int, Any]:
    rows = await raw_connection().fetch(
        "SELECT id, name, parent_id FROM department WHERE id = ANY($1::int[])", list(ids)
    )
    return {row["id"]: row for row in rows}
