"""Reading customers: one SQL query per list, only the columns asked for, and only what
the caller's policy lets them see.

Row visibility is the policy's SQL predicate in the WHERE clause; each field is
selected as its full value, its masked form or NULL, by SQL, per row (see
:mod:`dangan.authz.access`). Filters, search and ordering only ever see values the
caller could read in full, so they can't be used to learn hidden ones; a field the
caller can never see is "unknown", exactly like a field that doesn't exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.authz.access import CustomerAccess
from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.conditions import (
    Condition,
    condition_predicate,
    readable_field,
    unknown_field,
)
from dangan.services.customers.paging import SORTABLE, Order, decode_cursor, encode_cursor
from dangan.services.errors import BadUserInput, NotFound
from dangan.tenants.scope import raw_connection

SORT_KEY = "__sort"
# A merged customer lives on in the one it was merged into: lists leave it out, and its
# id answers NOT_FOUND (the merge record says where it went).
LIVE = Predicate("c.status <> 'MERGED'")


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    has_next: bool
    has_previous: bool
    total: int | None
    order: Order

    def cursor(self, row: Any) -> str:
        return encode_cursor(self.order, row[SORT_KEY], row["id"])


def parse_customer_id(raw: str) -> uuid.UUID:
    """A malformed id is just an id that matches nothing: NOT_FOUND, like a missing one."""
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound("no customer with this id") from exc


async def _sort_expression(access: CustomerAccess, order: Order, name: str | None) -> str:
    """The sort key: the field where the caller reads it in full, else a constant (so
    hidden values sort together and say nothing). Asking to sort by a field hidden from
    you everywhere is "unknown field"; the default order quietly falls back to the id."""
    sentinel = SORTABLE.get(order.field)
    if name is not None:
        if sentinel is None:
            raise unknown_field(name, "orderBy")
        await readable_field(access, name, order.field, "orderBy")
    field = access.field(order.field)
    if sentinel is None or field is None or field.full.never:
        return "''"
    if field.full.always:
        return f"COALESCE(c.{order.field}, {sentinel})"
    return f"COALESCE(CASE WHEN {{full}} THEN c.{order.field} END, {sentinel})"


async def _search(access: CustomerAccess, search: str) -> Predicate:
    term = search.strip()
    if not 1 <= len(term) <= 100:
        raise BadUserInput("search must be 1 to 100 characters", field="search")
    name = await readable_field(access, "name", "name", "search")
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return all_of([name.full, Predicate("c.name ILIKE ?", (f"%{escaped}%",))])


async def list_customers(
    caller: Caller,
    *,
    first: int,
    after: str | None = None,
    conditions: Sequence[Condition] = (),
    search: str | None = None,
    order: Order | None = None,
    order_name: str | None = None,
    columns: Sequence[str] = (),
    with_total: bool = False,
) -> Page:
    check_allowed(caller, "customer.read")
    access = await customer_access(caller)
    order = order or Order()
    where = [access.rows, LIVE, *[await condition_predicate(access, c) for c in conditions]]
    if search is not None:
        where.append(await _search(access, search))
    sort_template = await _sort_expression(access, order, order_name)
    conn = raw_connection()
    total = None
    if with_total:
        counting = Numbered()
        total = await conn.fetchval(
            f"SELECT count(*) FROM customer c WHERE {counting.add(all_of(where))}",
            *counting.params,
        )
    sql = Numbered()
    projection = access.projection(columns)
    inner = projection.inner_items(sql)
    full = access.field(order.field)
    sort = (
        sort_template.replace("{full}", sql.add(full.full))
        if "{full}" in sort_template and full
        else sort_template
    )
    keyset = ""
    if after is not None:
        value, row_id = decode_cursor(order, after)
        op = "<" if order.descending else ">"
        keyset = (
            f" AND ({sort}, c.id) {op} ({sql.value(value)}, {sql.value(parse_customer_id(row_id))})"
        )
    filters = sql.add(all_of(where))
    direction = "DESC" if order.descending else "ASC"
    # The page is chosen in the inner query; its rows are then shaped (masked, hidden).
    ordering = f"ORDER BY {SORT_KEY} {direction}, c.id {direction}"
    rows = await conn.fetch(
        f"SELECT {projection.outer_items()}, c.{SORT_KEY} FROM ("
        f"SELECT {inner}, {sort} AS {SORT_KEY} FROM customer c WHERE {filters}{keyset}"
        f" {ordering} LIMIT {int(first) + 1}) c {ordering}",
        *sql.params,
    )
    return Page(
        rows=rows[:first],
        has_next=len(rows) > first,
        has_previous=after is not None,
        total=total,
        order=order,
    )


async def get_customer_for_caller(
    caller: Caller, customer_id: str, columns: Sequence[str] = (), *, just_written: bool = False
) -> Any:
    """The customer as the caller may see it, or NOT_FOUND — the same for a missing id
    and for a customer the caller may not see.

    ``just_written``: the caller's own mutation just wrote this row (and was allowed
    to); its fields are still shown only as the policy says, even if the change took
    the row out of the caller's sight (say, handing the customer to a colleague).
    """
    if not just_written:
        check_allowed(caller, "customer.read")
    uid = parse_customer_id(customer_id)
    access = await customer_access(caller)
    sql = Numbered()
    projection = access.projection(columns)
    inner = projection.inner_items(sql)
    visible = "TRUE" if just_written else sql.add(all_of([access.rows, LIVE]))
    row = await raw_connection().fetchrow(
        f"SELECT {projection.outer_items()} FROM (SELECT {inner} FROM customer c"
        f" WHERE c.id = {sql.value(uid)} AND {visible}) c",
        *sql.params,
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
