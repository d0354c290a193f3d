"""修改须审批: changes that wait for someone other than their maker.

When a customer is updated, the policy's ``change_needs_approval`` is asked in SQL, on
the row, for each changed column. Those columns are not applied: they go into one
PENDING change (old values = the values at that moment, ``base_version`` = the row's
version) and the old values stand until it is decided. A pending-only update leaves the
customer (and its ``version``) as it was. The rest is applied at once.

The approver is whoever ``can_approve_change`` allows on the row, never the maker (not
even an administrator approves their own change). Approving re-checks that each field
still holds the recorded old value — if not, CONFLICT: reject it and submit it again —
then applies it and bumps ``version``. The maker may withdraw it while it is pending. A
change on a customer the caller can't see is NOT_FOUND, like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.authz.store import customer_access
from dangan.models.archive import CUSTOMER_FIELDS
from dangan.services import classification, history
from dangan.services.callers import Caller
from dangan.services.changes import as_text
from dangan.services.customers.duplicate_checks import check_identifiers_unique
from dangan.services.customers.inputs import api_name, check_kind_fits
from dangan.services.customers.reads import LIVE
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.services.rating.scoring import rerate_if_affected
from dangan.tenants.scope import raw_connection

# Stored text back to the column's value, for columns that are not text.
_FROM_TEXT: dict[str, Any] = {
    "birthday": date.fromisoformat,
    "payment_capacity": Decimal,
    "annual_revenue": Decimal,
    "registered_capital": Decimal,
    "owner_id": int,
    "department_id": int,
    "potential": int,
    "consents_to_sharing": lambda text: text == "true",
    "tags": lambda text: text.split(",") if text else [],
}


@dataclass
class UpdatePlan:
    """What an update changes: the row's current values, and the changed columns split
    into those applied now and those that wait for approval."""

    current: dict[str, Any]
    immediate: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)


async def plan_update(caller: Caller, uid: uuid.UUID, values: Mapping[str, Any]) -> UpdatePlan:
    """Split ``values`` by the policy's approval rule on this row; unchanged values drop
    out. ``current`` also holds region and city (the city must fit the region)."""
    access = await customer_access(caller)
    sql = Numbered()
    columns = list(dict.fromkeys([*values, "region", "city", "version"]))
    items = [f"c.{column}" for column in columns]
    items += [
        f"COALESCE({sql.add(access.approval(column))}, FALSE) AS needs_{column}"
        for column in values
    ]
    row = await raw_connection().fetchrow(
        f"SELECT {', '.join(items)} FROM customer c WHERE c.id = {sql.value(uid)}", *sql.params
    )
    plan = UpdatePlan(current={column: row[column] for column in columns})
    for column, value in values.items():
        if as_text(value) == as_text(row[column]):
            continue
        target = plan.pending if row[f"needs_{column}"] else plan.immediate
        target[column] = value
    return plan


def parse_change_id(raw: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise NotFound("no change with this id") from exc
    if not 0 < value < 2**63:
        raise NotFound("no change with this id")
    return value


@dataclass(frozen=True)
class _Pending:
    row: Any
    fields: list[Any]

    @property
    def customer_id(self) -> uuid.UUID:
        customer_id: uuid.UUID = self.row["customer_id"]
        return customer_id

    def made_by(self, caller: Caller) -> bool:
        return self.row["actor_kind"] == caller.kind and self.row["actor_id"] == caller.id


async def _pending(caller: Caller, raw_id: str) -> _Pending:
    """The pending change, locked with its customer; NOT_FOUND when the caller can't
    see the customer, CONFLICT when it is no longer pending."""
    change_id = parse_change_id(raw_id)
    access = await customer_access(caller)
    sql = Numbered()
    row = await raw_connection().fetchrow(
        f"SELECT ch.id, ch.customer_id, ch.status, ch.actor_kind, ch.actor_id,"
        f" {sql.add(access.rows)} AS visible,"
        f" COALESCE({sql.add(access.can('approve_change'))}, FALSE) AS approver"
        f" FROM customer_change ch JOIN customer c ON c.id = ch.customer_id"
        f" WHERE ch.id = {sql.value(change_id)} AND ch.record_type = 'customer'"
        f" AND {sql.add(LIVE)} FOR UPDATE OF ch, c",
        *sql.params,
    )
    if row is None or not row["visible"]:
        raise NotFound("no change with this id")
    if row["status"] != "PENDING":
        raise Conflict(f"this change is {row['status'].lower()}, not pending", field="id")
    fields = await raw_connection().fetch(
        "SELECT field, old_value, new_value FROM customer_change_field WHERE change_id = $1",
        change_id,
    )
    return _Pending(row, list(fields))


def _check_approver(caller: Caller, pending: _Pending) -> None:
    if pending.made_by(caller):
        raise Forbidden("you may not decide on your own change: someone else must")
    if not pending.row["approver"]:
        raise Forbidden("your access does not allow deciding on changes of this customer")


async def _decide(caller: Caller, change_id: int, status: str, comment: str | None) -> None:
    await raw_connection().execute(
        "UPDATE customer_change SET status = $2, decided_by = $3, decided_at = now(),"
        " decision_comment = $4 WHERE id = $1",
        change_id,
        status,
        caller.id if caller.kind == "user" else None,
        comment,
    )


def _check_comment(comment: str | None, *, required: bool) -> str | None:
    cleaned = " ".join((comment or "").split()) or None
    if required and cleaned is None:
        raise BadUserInput("comment: say why", field="comment")
    if cleaned is not None and len(cleaned) > 1000:
        raise BadUserInput("comment must be at most 1,000 characters", field="comment")
    return cleaned


async def _apply(caller: Caller, pending: _Pending) -> None:
    """Apply the change if each field still holds its recorded old value and no other
    customer has taken its ID number or USCC in the meantime."""
    columns = [item["field"] for item in pending.fields]
    if not set(columns) <= set(CUSTOMER_FIELDS):
        # Only this module writes pending changes, from writable columns; never let a
        # stored name reach SQL unchecked.
        raise Conflict("this change names unknown fields: reject it", field="id")
    conn = raw_connection()
    needed = dict.fromkeys([*columns, "kind", "id_number", "uscc"])
    current = await conn.fetchrow(
        f"SELECT {', '.join(f'c.{column}' for column in needed)} FROM customer c WHERE c.id = $1",
        pending.customer_id,
    )
    moved = [
        api_name(item["field"])
        for item in pending.fields
        if as_text(current[item["field"]]) != item["old_value"]
    ]
    if moved:
        raise Conflict(
            f"changed since this change was made ({', '.join(moved)}): reject it and submit"
            " it again",
            field="id",
            details={"changedFields": moved},
        )
    values = {
        item["field"]: (
            _FROM_TEXT.get(item["field"], str)(item["new_value"])
            if item["new_value"] is not None
            else None
        )
        for item in pending.fields
    }
    # A pending identifier reserves nothing: another customer may have it by now.
    await check_identifiers_unique(caller, values, pending.customer_id)
    merged = {**dict(current), **values}
    try:
        check_kind_fits(merged["kind"], merged)
        await classification.check_active_values(values, dict(current))
    except BadUserInput as exc:
        raise Conflict(f"no longer applicable: {exc.message}", field="id") from exc
    maker = pending.row["actor_id"] if pending.row["actor_kind"] == "user" else None
    sql = Numbered()
    assignments = ", ".join(f"{column} = {sql.value(value)}" for column, value in values.items())
    await conn.execute(
        f"UPDATE customer SET {assignments}, version = version + 1, updated_at = now(),"
        f" updated_by = {sql.value(maker)} WHERE id = {sql.value(pending.customer_id)}",
        *sql.params,
    )
    await rerate_if_affected([pending.customer_id], columns=list(values))


async def approve_change(caller: Caller, change_id: str, comment: str | None) -> int:
    """Apply a pending change (someone other than its maker, whom the policy allows)."""
    cleaned = _check_comment(comment, required=False)
    async with raw_connection().savepoint():
        pending = await _pending(caller, change_id)
        _check_approver(caller, pending)
        await _apply(caller, pending)
        await _decide(caller, pending.row["id"], "APPROVED", cleaned)
    return int(pending.row["id"])


async def reject_change(caller: Caller, change_id: str, comment: str) -> int:
    """Refuse a pending change; the old values stand. The comment says why."""
    cleaned = _check_comment(comment, required=True)
    async with raw_connection().savepoint():
        pending = await _pending(caller, change_id)
        _check_approver(caller, pending)
        await _decide(caller, pending.row["id"], "REJECTED", cleaned)
    return int(pending.row["id"])


async def withdraw_change(caller: Caller, change_id: str) -> int:
    """The maker takes back their pending change."""
    async with raw_connection().savepoint():
        pending = await _pending(caller, change_id)
        if not pending.made_by(caller):
            raise Forbidden("only the maker of a change may withdraw it")
        await raw_connection().execute(
            "UPDATE customer_change SET status = 'WITHDRAWN', decided_by = $2,"
            " decided_at = now() WHERE id = $1",
            pending.row["id"],
            caller.id if caller.kind == "user" else None,
        )
    return int(pending.row["id"])


async def pending_for_approver(caller: Caller, first: int, after: str | None) -> history.ChangePage:
    """Pending changes the caller may decide on (not their own), newest first."""
    history.check_page_size(first)
    before = history.decode_cursor(after) if after is not None else None
    access = await customer_access(caller)
    customers = all_of([access.rows, access.can("approve_change"), LIVE])
    if customers.never:
        return history.ChangePage(rows=[], has_next=False)
    mine = Predicate("ch.actor_kind = ? AND ch.actor_id = ?", (caller.kind, caller.id))
    changes = Predicate(f"ch.status = 'PENDING' AND NOT ({mine.sql})", mine.params)
    return await history.read_changes(access, customers, changes, limit=first, before=before)
