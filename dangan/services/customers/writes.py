"""Creating and changing customers, each in its own savepoint of the request.

A mutation either writes everything or nothing: its statements run in a nested
transaction, so a failure rolls back exactly this mutation's work.
"""

from __future__ import annotations

from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.customers.inputs import check_customer_values, check_kind_fits
from dangan.services.customers.reads import COLUMNS, parse_customer_id
from dangan.services.errors import BadUserInput, Conflict, NotFound
from dangan.tenants.scope import raw_connection

_RETURNING = ", ".join(COLUMNS)
WRITABLE = (
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
)


async def _check_owner(values: dict[str, Any]) -> None:
    """The owner must be an active member; their department is the default one."""
    owner_id = values.get("owner_id")
    if owner_id is None:
        return
    row = await raw_connection().fetchrow(
        "SELECT department_id FROM member WHERE identity_id = $1 AND active", owner_id
    )
    if row is None:
        raise BadUserInput("ownerId is not a member of this tenant", field="ownerId")
    if values.get("department_id") is None:
        values["department_id"] = row["department_id"]


async def _check_department(values: dict[str, Any]) -> None:
    department_id = values.get("department_id")
    if department_id is None:
        return
    found = await raw_connection().fetchval("SELECT 1 FROM department WHERE id = $1", department_id)
    if not found:
        raise BadUserInput("departmentId is not a department of this tenant", field="departmentId")


async def create_customer(caller: Caller, values: dict[str, Any]) -> Any:
    check_allowed(caller, "customer.create")
    unknown = set(values) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    row = check_customer_values(values).values
    if row.get("owner_id") is None and caller.kind == "user":
        row["owner_id"] = caller.id
    check_kind_fits(row["kind"], row)
    async with raw_connection().savepoint():
        await _check_owner(row)
        await _check_department(row)
        row["created_by"] = row["updated_by"] = caller.id if caller.kind == "user" else None
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        return await raw_connection().fetchrow(
            f"INSERT INTO customer ({', '.join(columns)}) VALUES ({placeholders})"
            f" RETURNING {_RETURNING}",
            *row.values(),
        )


async def update_customer(
    caller: Caller, customer_id: str, expected_version: int, changes: dict[str, Any]
) -> Any:
    """Apply ``changes`` if the customer is still at ``expected_version`` (else CONFLICT)."""
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    unknown = set(changes) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if not changes:
        raise BadUserInput("nothing to change: give at least one field", field="input")
    values = check_customer_values(changes).values
    async with raw_connection().savepoint():
        conn = raw_connection()
        current = await conn.fetchrow(
            "SELECT kind, id_number, uscc, version FROM customer WHERE id = $1 FOR UPDATE", uid
        )
        if current is None:
            raise NotFound("no customer with this id")
        if current["version"] != expected_version:
            raise Conflict(
                f"the customer was changed by someone else (version is now "
                f"{current['version']}, you sent {expected_version}); reload and retry",
                field="version",
            )
        merged = {**dict(current), **values}
        check_kind_fits(merged["kind"], merged)
        await _check_owner(values)
        await _check_department(values)
        values["updated_by"] = caller.id if caller.kind == "user" else None
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
        return await conn.fetchrow(
            f"UPDATE customer SET {assignments}, version = version + 1, updated_at = now()"
            f" WHERE id = $1 RETURNING {_RETURNING}",
            uid,
            *values.values(),
        )
