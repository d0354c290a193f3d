"""Reading the records of customers (contacts, communications, contracts, …) as the
caller may see them: one SQL query per record type for a whole page of customers.

A record is seen where its customer is and its class is shown to the caller on that
customer; each of its columns is then full, masked or NULL by its own class, decided in
SQL (:meth:`CustomerAccess.record_projection`), so hidden values never leave PostgreSQL.
Records come newest first by the type's own date (``RecordType.order_by``) where the
caller sees that date in full on the customer, else by id alone: a list (and which
records make its first N) must not be ordered by a value hidden from the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.authz.access import HIDDEN_FLAG, CustomerAccess, FieldAccess, Projection
from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.models.archive import FieldSpec
from dangan.models.records import RecordType
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, NotFound
from dangan.tenants.scope import raw_connection

MAX_FIRST = 100
OVERDUE = FieldSpec("financial", "amount")


@dataclass(frozen=True)
class CustomerRecords:
    """The records of one customer the caller sees, or ``hidden`` when the record class
    is not shown to them on that customer (the API answers null, not an empty list)."""

    rows: list[Any]
    hidden: bool


HIDDEN = CustomerRecords([], hidden=True)


def parse_record_id(raw: str) -> uuid.UUID:
    """A malformed id is an id that matches nothing: NOT_FOUND, like a missing one."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise NotFound("no such record") from exc


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInput(f"first must be between 1 and {MAX_FIRST}", field="first")


def _customer_ids(raw: Sequence[str | uuid.UUID]) -> list[uuid.UUID]:
    ids = []
    for value in raw:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue  # matches no customer: answered as hidden, like an invisible one
    return ids


def _order_field(access: CustomerAccess, record_type: RecordType) -> FieldAccess:
    """The caller's access to the column records are ordered by (always a classed one)."""
    column = record_type.order_by
    return access.class_field(column, record_type.fields[column])


async def records_for_customers(
    caller: Caller,
    record_type: RecordType,
    customer_ids: Sequence[str | uuid.UUID],
    columns: Sequence[str],
    first: int,
) -> dict[uuid.UUID, CustomerRecords]:
    """Per customer id, at most ``first`` records newest first, in one query for all
    the ids. Ids of customers the caller can't see (or that don't exist) are answered
    as hidden, exactly like customers whose record class is hidden from the caller."""
    check_allowed(caller, "customer.read")
    check_first(first)
    ids = _customer_ids(customer_ids)
    access = await customer_access(caller)
    sql = Numbered()
    projection = access.record_projection(record_type, columns)
    inner = projection.inner_items(sql)
    shown = sql.add(access.record_class(record_type))
    order_full = sql.add(_order_field(access, record_type).full)
    visible = sql.add(access.rows)
    order = f"CASE WHEN s.order_full THEN r.{record_type.order_by} END DESC NULLS LAST, r.id DESC"
    # Every visible customer yields at least one row (r.id NULL when it has no record
    # or the class is hidden), so one query also tells hidden from empty.
    rows = await raw_connection().fetch(
        f"SELECT {projection.outer_items()}, r.__customer, r.__shown FROM ("
        f"SELECT {inner}, c.id AS __customer, s.shown AS __shown,"
        f" row_number() OVER (PARTITION BY c.id ORDER BY {order}) AS __n"
        f" FROM customer c CROSS JOIN LATERAL (SELECT COALESCE({shown}, FALSE) AS shown,"
        f" COALESCE({order_full}, FALSE) AS order_full) s"
        f" LEFT JOIN {record_type.table} r ON r.customer_id = c.id AND s.shown"
        f" WHERE c.id = ANY({sql.value(ids)}::uuid[]) AND {visible}"
        f") r WHERE r.__n <= {int(first)} ORDER BY r.__customer, r.__n",
        *sql.params,
    )
    found: dict[uuid.UUID, CustomerRecords] = {}
    for row in rows:
        customer = row["__customer"]
        if not row["__shown"]:
            found[customer] = HIDDEN
            continue
        entry = found.setdefault(customer, CustomerRecords([], hidden=False))
        if row["id"] is not None:
            entry.rows.append(row)
    return found


async def record_for_caller(
    caller: Caller,
    record_type: RecordType,
    record_id: str | uuid.UUID,
    columns: Sequence[str],
) -> Any:
    """One record as the caller may see it, or NOT_FOUND (missing, malformed and
    invisible ids alike)."""
    check_allowed(caller, "customer.read")
    rid = parse_record_id(str(record_id))
    access = await customer_access(caller)
    sql = Numbered()
    projection = access.record_projection(record_type, columns)
    inner = projection.inner_items(sql)
    visible = sql.add(access.record_rows(record_type))
    row = await raw_connection().fetchrow(
        f"SELECT {projection.outer_items()} FROM (SELECT {inner}"
        f" FROM {record_type.table} r JOIN customer c ON c.id = r.customer_id"
        f" WHERE r.id = {sql.value(rid)} AND {visible}) r",
        *sql.params,
    )
    if row is None:
        raise NotFound("no such record")
    return row


@dataclass(frozen=True)
class OverdueAmount:
    """What is overdue on a customer's payments: the amount, its range (masked), or
    nothing (``hidden``) where the caller may not see financial information."""

    value: str | None
    hidden: bool


def _overdue_projection(access: CustomerAccess) -> Projection:
    # The inner select reads from customers extended by two columns, under the alias
    # ``c`` that the policy's predicates speak of.
    projection = Projection()
    projection.add("customer_id", None, plain=True)
    projection.add("overdue_amount", access.class_field("overdue_amount", OVERDUE))
    return projection


async def overdue_amounts(
    caller: Caller, customer_ids: Sequence[str | uuid.UUID]
) -> dict[uuid.UUID, OverdueAmount]:
    """Per visible customer: the sum of what is still unpaid on payments due before
    today, computed in SQL and shown as the financial class allows."""
    check_allowed(caller, "customer.read")
    access = await customer_access(caller)
    sql = Numbered()
    projection = _overdue_projection(access)
    inner = projection.inner_items(sql)
    ids = sql.value(_customer_ids(customer_ids))
    visible = sql.add(access.rows)
    rows = await raw_connection().fetch(
        f"SELECT {projection.outer_items()} FROM (SELECT {inner} FROM ("
        f"SELECT c.*, c.id AS customer_id, COALESCE(("
        f"SELECT sum(p.amount - p.paid_amount) FROM payment_record p WHERE p.customer_id = c.id"
        f" AND p.due_on < current_date AND p.paid_amount < p.amount), 0) AS overdue_amount"
        f" FROM customer c WHERE c.id = ANY({ids}::uuid[]) AND {visible}) c) c",
        *sql.params,
    )
    hidden_flag = f"{HIDDEN_FLAG}overdue_amount"
    return {
        row["customer_id"]: OverdueAmount(
            value=None if row["overdue_amount"] is None else str(row["overdue_amount"]),
            hidden=bool(row.get(hidden_flag, False)),
        )
        for row in rows
    }
