"""Adding, changing and removing the records of a customer, each in a savepoint of the
request together with its entry in the change record.

The customer must be one the caller sees and not merged into another (else NOT_FOUND, as
for a missing id) and may edit (``can_edit``, else FORBIDDEN); each column they set must
be shown to them, in full or masked, by its class on that customer — all decided in SQL
on the row itself. A record's references (a contact person, a contract) must belong to
the same customer; an id of another customer's record and a missing one get the same
answer. Removing a record needs only that it is visible and its customer editable: its
old values go to the change record, where each reader sees them as their own policy
allows.

Contract numbers are unique in the tenant, so a number already used on a contract the
caller can't see is still refused (CONFLICT on ``number``); the number is all it tells.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.models.records import RecordType
from dangan.services.callers import Caller
from dangan.services.changes import record_change
from dangan.services.customers.inputs import api_name
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.services.rating.scoring import rerate_if_affected
from dangan.services.records.inputs import check_record_values, check_transition
from dangan.services.records.reads import parse_record_id
from dangan.tenants.scope import raw_connection

# References to other records of the same customer, by column.
_SAME_CUSTOMER = {"contact_person_id": "contact_person", "contract_id": "contract"}


async def _rights(
    caller: Caller, record_type: RecordType, key: uuid.UUID, columns: list[str], *, record: bool
) -> Any:
    """One locked row about the customer (alias ``c``) a write concerns: visible (and
    not merged), editable, record class shown, and per column "may see it" (``can_<column>``). With
    ``record``, ``key`` is a record's id and the row also holds that record's columns;
    else it is the customer's id."""
    access = await customer_access(caller)
    sql = Numbered()
    items = [
        f"COALESCE({sql.add(all_of([access.rows, LIVE]))}, FALSE) AS visible",
        f"COALESCE({sql.add(access.can('edit'))}, FALSE) AS editable",
        f"COALESCE({sql.add(access.record_class(record_type))}, FALSE) AS class_shown",
    ]
    for column in columns:
        spec = record_type.spec(column)
        shown = sql.add(access.class_field(column, spec).shown) if spec else "FALSE"
        items.append(f"COALESCE({shown}, FALSE) AS can_{column}")
    if record:
        source = f"{record_type.table} r JOIN customer c ON c.id = r.customer_id"
        rest, alias = ", r.*", "r"
    else:
        source, rest, alias = "customer c", "", "c"
    return await raw_connection().fetchrow(
        f"SELECT {', '.join(items)}{rest} FROM {source}"
        f" WHERE {alias}.id = {sql.value(key)} FOR UPDATE OF {alias}",
        *sql.params,
    )


def _check_rights(rights: Any, columns: list[str], *, record: bool) -> None:
    """NOT_FOUND for what the caller can't see (a record counts as seen only where its
    class is shown), FORBIDDEN for what they see but may not change."""
    if rights is None or not rights["visible"] or (record and not rights["class_shown"]):
        raise NotFound("no such record" if record else "no customer with this id")
    if not rights["editable"]:
        raise Forbidden("your access does not allow changing this customer")
    if not rights["class_shown"]:
        raise Forbidden("your access does not allow records of this kind on this customer")
    for column in columns:
        if not rights[f"can_{column}"]:
            name = api_name(column)
            raise Forbidden(f"you may not set {name} on this customer", field=name)


async def _check_references(values: dict[str, Any], customer_id: uuid.UUID) -> None:
    conn = raw_connection()
    staff_id = values.get("staff_id")
    if staff_id is not None and not await conn.fetchval(
        "SELECT 1 FROM member WHERE identity_id = $1 AND active", staff_id
    ):
        raise BadUserInput("staffId is not an active member of this tenant", field="staffId")
    for column, table in _SAME_CUSTOMER.items():
        ref = values.get(column)
        if ref is not None and not await conn.fetchval(
            f"SELECT 1 FROM {table} WHERE id = $1 AND customer_id = $2", ref, customer_id
        ):
            name = api_name(column)
            raise BadUserInput(f"{name} is not a record of this customer", field=name)


async def _check_contract_number(values: dict[str, Any]) -> None:
    number = values.get("number")
    if number is not None and await raw_connection().fetchval(
        "SELECT 1 FROM contract WHERE number = $1", number
    ):
        raise _number_taken()


def _number_taken() -> Conflict:
    return Conflict("a contract with this number already exists", field="number")


async def add_record(
    caller: Caller, record_type: RecordType, customer_id: str, values: dict[str, Any]
) -> str:
    """Add a record to a customer; returns its id. Nothing is written on any refusal."""
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    row = {k: v for k, v in check_record_values(record_type.table, values).items() if v is not None}
    if record_type.table == "communication" and "staff_id" not in row and caller.kind == "user":
        row["staff_id"] = caller.id
    given = list(row)
    try:
        async with raw_connection().savepoint():
            rights = await _rights(caller, record_type, uid, given, record=False)
            _check_rights(rights, given, record=False)
            await _check_references(row, uid)
            await _check_contract_number(row)
            row["customer_id"] = uid
            row["created_by"] = caller.id if caller.kind == "user" else None
            sql = Numbered()
            placeholders = ", ".join(sql.value(value) for value in row.values())
            new_id = await raw_connection().fetchval(
                f"INSERT INTO {record_type.table} ({', '.join(row)}) VALUES ({placeholders})"
                " RETURNING id",
                *sql.params,
            )
            fields = {column: (None, row[column]) for column in given}
            await record_change(
                caller, uid, "add", fields, record_type=record_type.table, record_id=new_id
            )
            await rerate_if_affected([uid], record=record_type.table)
    except asyncpg.UniqueViolationError as exc:  # a concurrent contract with that number
        raise _number_taken() from exc
    return str(new_id)


async def update_record(
    caller: Caller, record_type: RecordType, record_id: str, values: dict[str, Any]
) -> str:
    """Change the updatable columns of a record (statuses move only forward, see
    ``TRANSITIONS``); returns its id."""
    check_allowed(caller, "customer.update")
    rid = parse_record_id(record_id)
    cleaned = check_record_values(record_type.table, values, partial=True)
    columns = list(cleaned)
    # Whether the caller sees a complaint's resolution decides what its check may read.
    asked = [*columns, "resolution"] if record_type.table == "complaint" else columns
    async with raw_connection().savepoint():
        rights = await _rights(caller, record_type, rid, list(dict.fromkeys(asked)), record=True)
        _check_rights(rights, columns, record=True)
        for column, value in cleaned.items():
            check_transition(record_type.table, column, rights[column], value)
        if record_type.table == "complaint":
            _check_resolution(rights, cleaned)
        changes = {c: (rights[c], v) for c, v in cleaned.items() if rights[c] != v}
        if changes:
            sql = Numbered()
            assignments = ", ".join(f"{c} = {sql.value(new)}" for c, (_, new) in changes.items())
            await raw_connection().execute(
                f"UPDATE {record_type.table} SET {assignments} WHERE id = {sql.value(rid)}",
                *sql.params,
            )
            await record_change(
                caller,
                rights["customer_id"],
                "update",
                changes,
                record_type=record_type.table,
                record_id=rid,
            )
            await rerate_if_affected([rights["customer_id"]], record=record_type.table)
    return str(rid)


def _check_resolution(current: Any, cleaned: dict[str, Any]) -> None:
    """A complaint is resolved or closed only with its resolution written down. A caller
    who may not see the resolution (notes) can't resolve or close it: whether the stored
    one is empty is not theirs to learn, and they may not write one either."""
    status = cleaned.get("status", current["status"])
    if status not in ("RESOLVED", "CLOSED"):
        return
    if "resolution" not in cleaned and not current["can_resolution"]:
        raise Forbidden(
            f"you may not set the status to {status}: its resolution is not shown to you",
            field="status",
        )
    if not cleaned.get("resolution", current["resolution"]):
        raise BadUserInput(
            f"resolution is required when the status is {status}", field="resolution"
        )


async def remove_record(
    caller: Caller, record_type: RecordType, record_id: str, reason: str
) -> None:
    """Delete a record; its values and the reason stay in the change record."""
    check_allowed(caller, "customer.update")
    rid = parse_record_id(record_id)
    reason = " ".join(str(reason).split())
    if not 1 <= len(reason) <= 500:
        raise BadUserInput("reason must be 1 to 500 characters", field="reason")
    async with raw_connection().savepoint():
        rights = await _rights(caller, record_type, rid, [], record=True)
        _check_rights(rights, [], record=True)
        await raw_connection().execute(f"DELETE FROM {record_type.table} WHERE id = $1", rid)
        kept = [c for c in record_type.fields if c not in ("created_at", "created_by")]
        await record_change(
            caller,
            rights["customer_id"],
            "remove",
            {column: (rights[column], None) for column in kept},
            record_type=record_type.table,
            record_id=rid,
            reason=reason,
        )
        await rerate_if_affected([rights["customer_id"]], record=record_type.table)
