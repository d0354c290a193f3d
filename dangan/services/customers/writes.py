"""Creating and changing customers, each in its own savepoint of the request.

A mutation either writes everything or nothing: its statements run in a nested
transaction, so a failure rolls back exactly this mutation's work. The policy decides
who may change which customer (``can_edit``) and a caller may only set fields they can
see (full or masked) on that customer; both are checked in SQL on the row itself — for a new
customer right after the insert, inside the same savepoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.services import approvals, classification
from dangan.services.callers import Caller
from dangan.services.changes import record_change
from dangan.services.customers.duplicate_checks import (
    check_identifiers_unique,
    check_not_duplicate,
)
from dangan.services.customers.inputs import (
    FIELD_NAMES,
    check_city_fits,
    check_customer_values,
    check_kind_fits,
)
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.services.rating.scoring import rate_customers, rerate_if_affected
from dangan.tenants.scope import raw_connection

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


async def rights_items(caller: Caller, columns: Sequence[str], sql: Numbered) -> str:
    """Select items on ``customer c``: ``visible``, ``editable`` and, per column,
    ``can_<column>`` — "may see it" (in full or masked: entering an ID number one may only
    see masked is fine; setting a field one may not see at all is not)."""
    access = await customer_access(caller)
    items = [
        f"{sql.add(all_of([access.rows, LIVE]))} AS visible",
        f"{sql.add(access.can('edit'))} AS editable",
    ]
    for column in columns:
        field = access.field(column)
        readable = sql.add(field.shown) if field else "FALSE"
        items.append(f"COALESCE({readable}, FALSE) AS can_{column}")
    return ", ".join(items)


async def _rights_on_row(caller: Caller, uid: Any, columns: list[str]) -> Any:
    """One row of :func:`rights_items` for the customer ``uid``, locked."""
    sql = Numbered()
    items = await rights_items(caller, columns, sql)
    return await raw_connection().fetchrow(
        f"SELECT {items}, c.kind, c.id_number, c.uscc, c.version"
        f" FROM customer c WHERE c.id = {sql.value(uid)} FOR UPDATE",
        *sql.params,
    )


def _check_fields(rights: Any, columns: list[str]) -> None:
    for column in columns:
        if not rights[f"can_{column}"]:
            name = FIELD_NAMES[column]
            raise Forbidden(f"you may not set {name} on this customer", field=name)


async def create_customer(
    caller: Caller, values: dict[str, Any], *, allow_possible_duplicate: bool = False
) -> str:
    """Insert a customer; returns its id. The caller must be allowed to edit the new
    customer and to read every field they set (else nothing is written). A duplicate
    of an existing customer is refused (see ``duplicate_checks``)."""
    check_allowed(caller, "customer.create")
    unknown = set(values) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    row = {k: v for k, v in check_customer_values(values).values.items() if v is not None}
    if row.get("owner_id") is None and caller.kind == "user":
        row["owner_id"] = caller.id
    check_kind_fits(row["kind"], row)
    await check_not_duplicate(caller, row, allow_possible=allow_possible_duplicate)
    async with raw_connection().savepoint():
        await _check_owner(row)
        await _check_department(row)
        given = [column for column in row if column not in ("kind", "name")]
        row["created_by"] = row["updated_by"] = caller.id if caller.kind == "user" else None
        sql = Numbered()
        placeholders = ", ".join(sql.value(value) for value in row.values())
        new_id = await raw_connection().fetchval(
            f"INSERT INTO customer ({', '.join(row)}) VALUES ({placeholders}) RETURNING id",
            *sql.params,
        )
        rights = await _rights_on_row(caller, new_id, [*given, "name"])
        if not (rights["visible"] and rights["editable"]):
            raise Forbidden("your access does not allow creating this customer")
        _check_fields(rights, [*given, "name"])
        check_city_fits(row)
        await classification.check_active_values(row, {})
        initial = {k: (None, v) for k, v in row.items() if k not in ("created_by", "updated_by")}
        await record_change(caller, new_id, "create", initial)
        await rate_customers([new_id], "change")
    return str(new_id)


async def update_customer(
    caller: Caller,
    customer_id: str,
    expected_version: int,
    changes: dict[str, Any],
    reason: str | None = None,
) -> str:
    """Apply ``changes`` if the customer is still at ``expected_version`` (else CONFLICT).

    Columns whose change the policy puts up for approval wait in a PENDING change (see
    :mod:`dangan.services.approvals`); the rest are applied and recorded as one APPLIED
    change. Values equal to the current ones are not changes: an update that changes
    nothing writes nothing and leaves ``version`` as it is, and so does one whose every
    change waits for approval.
    """
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    unknown = set(changes) - set(WRITABLE)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    if not changes:
        raise BadUserInput("nothing to change: give at least one field", field="input")
    reason = " ".join((reason or "").split()) or None
    if reason is not None and len(reason) > 500:
        raise BadUserInput("reason must be at most 500 characters", field="reason")
    values = check_customer_values(changes).values
    async with raw_connection().savepoint():
        rights = await _rights_on_row(caller, uid, list(values))
        if rights is None or not rights["visible"]:
            raise NotFound("no customer with this id")
        if not rights["editable"]:
            raise Forbidden("your access does not allow changing this customer")
        _check_fields(rights, list(values))
        if rights["version"] != expected_version:
            raise Conflict(
                f"the customer was changed by someone else (version is now "
                f"{rights['version']}, you sent {expected_version}); reload and retry",
                field="version",
            )
        await check_identifiers_unique(caller, values, uid)
        merged = {**dict(rights), **values}
        check_kind_fits(merged["kind"], merged)
        await _check_owner(values)
        await _check_department(values)
        plan = await approvals.plan_update(caller, uid, values)
        if "city" in values or "region" in values:
            check_city_fits({**plan.current, **values})
        await classification.check_active_values(values, plan.current)
        if plan.immediate:
            sql = Numbered()
            assignments = ", ".join(
                f"{column} = {sql.value(v)}" for column, v in plan.immediate.items()
            )
            updated_by = caller.id if caller.kind == "user" else None
            await raw_connection().execute(
                f"UPDATE customer SET {assignments}, version = version + 1, updated_at = now(),"
                f" updated_by = {sql.value(updated_by)} WHERE id = {sql.value(uid)}",
                *sql.params,
            )
            applied = {k: (plan.current[k], v) for k, v in plan.immediate.items()}
            await record_change(caller, uid, "update", applied, reason=reason)
            await rerate_if_affected([uid], columns=list(plan.immediate))
        if plan.pending:
            waiting = {k: (plan.current[k], v) for k, v in plan.pending.items()}
            await record_change(
                caller,
                uid,
                "update",
                waiting,
                reason=reason,
                status="PENDING",
                # The version the old values were read at (after this call's applied part).
                base_version=plan.current["version"] + (1 if plan.immediate else 0),
            )
    return str(uid)
