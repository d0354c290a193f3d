"""Merging duplicate customers into one, and undoing a merge within 30 days (admins).

A merge keeps one customer (the survivor): every record of the others moves to it
(:mod:`merge_records`), its empty fields are filled from the others (first non-empty
value, in the order the others were given), and the others become ``MERGED`` with
``merged_into`` pointing at it — they leave lists and duplicate checks but stay on
record. ``customer_merge`` keeps what moved, each other's previous status and what was
filled, so an undo restores exactly that: records still on the survivor go back,
statuses return, and each filled field is emptied again — unless it was changed since
the merge, which stops the undo (CONFLICT naming the field) rather than lose the change.
Every customer involved gets a change record (``merge`` / ``unmerge``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import FALSE, Numbered, all_of, none_of
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.changes import as_text, record_change
from dangan.services.customers.inputs import api_name, check_city_fits
from dangan.services.customers.merge_records import (
    move_records,
    return_records,
    stranded_references,
)
from dangan.services.customers.writes import WRITABLE
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.services.rating.scoring import rate_customers
from dangan.tenants.scope import raw_connection

MAX_OTHERS = 10
UNDO_DAYS = 30
# Customer facts a survivor takes over from a merged customer when it has none.
FILLABLE = tuple(
    column
    for column in WRITABLE
    # What says who the customer is and who looks after it stays the survivor's own.
    if column not in ("kind", "name", "tier", "owner_id", "department_id", "consents_to_sharing")
    and column not in ("potential", "competition_risk")
)
# Identifiers that belong to one kind of customer only (see inputs.check_kind_fits).
_NOT_FOR_KIND = {"INDIVIDUAL": "uscc", "ENTERPRISE": "id_number"}


def _parse_id(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise NotFound("no customer with this id", field=field) from exc


def _check_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not 1 <= len(text) <= 500:
        raise BadUserInput("reason must be 1 to 500 characters", field="reason")
    return text


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == ""


async def _lock_customers(caller: Caller, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The customers' rows, locked (in id order, so overlapping merges don't deadlock),
    with whether the caller sees and may edit each, and per fillable column whether the
    caller may move it (``__fill_<column>``: seen in full, and a change to it needs no
    approval — a merge must not be a way around the four-eyes rule)."""
    access = await customer_access(caller)
    sql = Numbered()
    fill_flags = []
    for column in FILLABLE:
        field = access.field(column)
        may = all_of([field.full, none_of(access.approval(column))]) if field else FALSE
        fill_flags.append(f"COALESCE({sql.add(may)}, FALSE) AS __fill_{column}")
    rows = await raw_connection().fetch(
        f"SELECT c.*, COALESCE({sql.add(access.rows)}, FALSE) AS __visible,"
        f" COALESCE({sql.add(access.can('edit'))}, FALSE) AS __editable, {', '.join(fill_flags)}"
        f" FROM customer c WHERE c.id = ANY({sql.value(list(ids))}::uuid[])"
        " ORDER BY c.id FOR UPDATE",
        *sql.params,
    )
    return {row["id"]: row for row in rows if row["__visible"]}


def _check_rights(rows: dict[uuid.UUID, Any], uid: uuid.UUID, field: str) -> Any:
    row = rows.get(uid)
    if row is None:
        raise NotFound("no customer with this id", field=field)
    if not row["__editable"]:
        raise Forbidden("your access does not allow changing this customer", field=field)
    return row


def _fills(survivor: Any, others: Sequence[Any]) -> dict[str, tuple[uuid.UUID, Any]]:
    """Column → (from which other, value) for each empty field of the survivor that the
    caller may move (see ``_lock_customers``), keeping the survivor a valid customer: one
    identifier that fits its kind, a city in its region."""
    fills: dict[str, tuple[uuid.UUID, Any]] = {}
    for column in FILLABLE:
        if not _empty(survivor[column]) or _NOT_FOR_KIND.get(survivor["kind"]) == column:
            continue
        if not survivor[f"__fill_{column}"]:
            continue
        source = next((o for o in others if not _empty(o[column]) and o[f"__fill_{column}"]), None)
        if source is not None:
            fills[column] = (source["id"], source[column])
    merged = {**dict(survivor), **{column: value for column, (_, value) in fills.items()}}
    if merged.get("id_number") and merged.get("uscc"):
        for column in ("id_number", "uscc"):
            if column in fills:  # a customer carries an ID number or a USCC, not both
                del fills[column]
                break
    try:
        check_city_fits({**dict(survivor), **{c: v for c, (_, v) in fills.items()}})
    except BadUserInput:
        fills.pop("city", None)
        fills.pop("region", None)
    return fills


async def merge_customers(
    caller: Caller, survivor_id: str, other_ids: Sequence[str], reason: str
) -> Any:
    """Merge ``other_ids`` into ``survivor_id``; returns the ``customer_merge`` row."""
    check_allowed(caller, "customer.merge")
    why = _check_reason(reason)
    if not 1 <= len(other_ids) <= MAX_OTHERS:
        raise BadUserInput(f"otherIds must name 1 to {MAX_OTHERS} customers", field="otherIds")
    survivor_uid = _parse_id(survivor_id, "survivorId")
    others = [_parse_id(raw, "otherIds") for raw in other_ids]
    if len(set(others)) != len(others):
        raise BadUserInput("otherIds names a customer twice", field="otherIds")
    if survivor_uid in others:
        raise BadUserInput("the survivor cannot also be among otherIds", field="otherIds")
    conn = raw_connection()
    async with conn.savepoint():
        rows = await _lock_customers(caller, [survivor_uid, *others])
        survivor = _check_rights(rows, survivor_uid, "survivorId")
        merged = [_check_rights(rows, uid, "otherIds") for uid in others]
        for row, field in ((survivor, "survivorId"), *((row, "otherIds") for row in merged)):
            if row["status"] == "MERGED":
                raise Conflict(f"customer {row['id']} was already merged", field=field)
        moved = {str(uid): await move_records(survivor_uid, uid) for uid in others}
        fills = _fills(survivor, merged)
        user = caller.id if caller.kind == "user" else None
        sql = Numbered()
        assignments = "".join(f"{column} = {sql.value(v)}, " for column, (_, v) in fills.items())
        await conn.execute(
            f"UPDATE customer SET {assignments}version = version + 1, updated_at = now(),"
            f" updated_by = {sql.value(user)} WHERE id = {sql.value(survivor_uid)}",
            *sql.params,
        )
        await conn.execute(
            "UPDATE customer SET status = 'MERGED', merged_into = $1, status_changed_at = now(),"
            " version = version + 1, updated_at = now(), updated_by = $2"
            " WHERE id = ANY($3::uuid[])",
            survivor_uid,
            user,
            others,
        )
        # Pending changes of a merged customer can no longer be decided (it answers
        # NOT_FOUND): they end here, and an undo does not bring them back.
        await conn.execute(
            "UPDATE customer_change SET status = 'WITHDRAWN', decided_by = $1,"
            " decided_at = now(), decision_comment = 'withdrawn: customer merged into ' || $2"
            " WHERE customer_id = ANY($3::uuid[]) AND status = 'PENDING'",
            user,
            str(survivor_uid),
            others,
        )
        record = {
            "records": moved,
            "statuses": {str(row["id"]): row["status"] for row in merged},
            "filled": {
                column: {"from": str(source), "value": as_text(value)}
                for column, (source, value) in fills.items()
            },
        }
        merge = await conn.fetchrow(
            "INSERT INTO customer_merge (survivor_id, merged_ids, moved, merged_by, undo_until)"
            " VALUES ($1, $2, $3::jsonb, $4, now() + make_interval(days => $5)) RETURNING *",
            survivor_uid,
            others,
            orjson.dumps(record).decode(),
            caller.id,
            UNDO_DAYS,
        )
        changes = {column: (None, value) for column, (_, value) in fills.items()}
        await _record(caller, survivor_uid, "merge", changes, merge["id"], why)
        for row in merged:
            status = {"status": (row["status"], "MERGED"), "merged_into": (None, survivor_uid)}
            await _record(caller, row["id"], "merge", status, merge["id"], why)
        await rate_customers([survivor_uid], "change")  # it has their purchases now
    return merge


async def undo_merge(caller: Caller, merge_id: str, reason: str) -> Any:
    """Undo a merge (once, until its ``undo_until``); returns the updated merge row."""
    check_allowed(caller, "customer.merge")
    why = _check_reason(reason)
    try:
        uid = uuid.UUID(str(merge_id))
    except ValueError as exc:
        raise NotFound("no merge with this id", field="mergeId") from exc
    conn = raw_connection()
    async with conn.savepoint():
        merge = await conn.fetchrow(
            "SELECT *, undo_until < now() AS expired FROM customer_merge WHERE id = $1 FOR UPDATE",
            uid,
        )
        if merge is None:
            raise NotFound("no merge with this id", field="mergeId")
        survivor_uid, others = merge["survivor_id"], list(merge["merged_ids"])
        rows = await _lock_customers(caller, [survivor_uid, *others])
        if any(customer not in rows for customer in (survivor_uid, *others)):
            raise NotFound("no merge with this id", field="mergeId")
        for customer in (survivor_uid, *others):
            _check_rights(rows, customer, "mergeId")
        if merge["undone_at"] is not None:
            raise Conflict("this merge was already undone", field="mergeId")
        if merge["expired"]:
            raise Conflict(
                f"a merge can only be undone within {UNDO_DAYS} days (until"
                f" {merge['undo_until'].isoformat()})",
                field="mergeId",
            )
        survivor = rows[survivor_uid]
        if survivor["status"] == "MERGED":
            raise Conflict(
                "the surviving customer was merged into another one since; undo that first",
                field="mergeId",
            )
        record = orjson.loads(merge["moved"])
        filled: dict[str, Any] = record["filled"]
        for column, fill in filled.items():
            if as_text(survivor[column]) != fill["value"]:
                raise Conflict(
                    f"{api_name(column)} of the surviving customer was changed after the merge;"
                    " set it back or merge again instead of undoing",
                    field=api_name(column),
                )
        for other in others:
            stranded = await stranded_references(
                survivor_uid, record["records"].get(str(other), {})
            )
            if stranded:
                raise Conflict(
                    "records added to the surviving customer since the merge"
                    f" ({', '.join(stranded)}) refer to records that would go back;"
                    " remove or change them first",
                    field="mergeId",
                )
        for other in others:
            await return_records(survivor_uid, other, record["records"].get(str(other), {}))
        user = caller.id if caller.kind == "user" else None
        clear = "".join(
            f"{column} = {'DEFAULT' if column == 'tags' else 'NULL'}, " for column in filled
        )
        await conn.execute(
            f"UPDATE customer SET {clear}version = version + 1, updated_at = now(),"
            " updated_by = $1 WHERE id = $2",
            user,
            survivor_uid,
        )
        for other in others:
            await conn.execute(
                "UPDATE customer SET status = $1, merged_into = NULL, status_changed_at = now(),"
                " version = version + 1, updated_at = now(), updated_by = $2 WHERE id = $3",
                record["statuses"][str(other)],
                user,
                other,
            )
        undone = await conn.fetchrow(
            "UPDATE customer_merge SET undone_by = $1, undone_at = now() WHERE id = $2 RETURNING *",
            caller.id,
            uid,
        )
        changes = {column: (survivor[column], None) for column in filled}
        await _record(caller, survivor_uid, "unmerge", changes, uid, why)
        await rate_customers([survivor_uid, *others], "change")
        for other in others:
            status = {
                "status": ("MERGED", record["statuses"][str(other)]),
                "merged_into": (survivor_uid, None),
            }
            await _record(caller, other, "unmerge", status, uid, why)
    return undone


async def _record(
    caller: Caller,
    customer_id: uuid.UUID,
    action: str,
    fields: dict[str, tuple[Any, Any]],
    merge_id: uuid.UUID,
    reason: str,
) -> None:
    await record_change(
        caller,
        customer_id,
        action,
        fields,
        record_type="customer_merge",
        record_id=merge_id,
        reason=reason,
    )
