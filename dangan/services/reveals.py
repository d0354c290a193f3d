"""Revealing a masked value in full (e.g. a salesperson checking an ID number), where
the policy's ``can_reveal`` allows it, with a reason that is kept."""

from __future__ import annotations

from typing import Any

from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.conditions import unknown_field
from dangan.services.customers.reads import parse_customer_id
from dangan.services.errors import BadUserInput, Forbidden, NotFound
from dangan.tenants.scope import raw_connection


async def reveal_field(
    caller: Caller, customer_id: str, column: str | None, name: str, reason: str
) -> str | None:
    """The full value of one field of one customer, as text (None when empty)."""
    reason = " ".join(reason.split())
    if not 5 <= len(reason) <= 500:
        raise BadUserInput("reason must be 5 to 500 characters", field="reason")
    uid = parse_customer_id(customer_id)
    access = await customer_access(caller)
    field = access.field(column) if column else None
    if column is None or field is None or field.never_shown:
        raise unknown_field(name, "field")
    sql = Numbered()
    row: Any = await raw_connection().fetchrow(
        f"SELECT {sql.add(access.reveal(column))} AS allowed, c.{column}::text AS value"
        f" FROM customer c WHERE c.id = {sql.value(uid)} AND {sql.add(access.rows)}",
        *sql.params,
    )
    if row is None:
        raise NotFound("no customer with this id")
    if not row["allowed"]:
        raise Forbidden(
            f"your access does not allow revealing {name} of this customer", field="field"
        )
    await raw_connection().execute(
        "INSERT INTO field_reveal (customer_id, field, actor_kind, actor_id, reason)"
        " VALUES ($1, $2, $3, $4, $5)",
        uid,
        column,
        caller.kind,
        caller.id,
        reason,
    )
    return row["value"]
