"""Legal holds (法律保全): a customer that must not be destroyed, whatever the rules say.

Whoever the policy's ``can_manage_legal_holds`` allows (administrators and auditors by
default) places a hold on a customer they can see, with a reason, and releases it with
another. While it holds, the customer is never marked nor destroyed — nor its
communications, nor the share requests that name it — and placing it unmarks what was
marked already (a released hold lets the next run mark them again, with a full grace
period). The database refuses to delete a held customer too (a trigger). Holds are
kept after release, as the record of who held what, when and why.
"""

from __future__ import annotations

import uuid
from typing import Any

from dangan.authz.predicates import Numbered, all_of
from dangan.authz.retention import check_retention_right, has_retention_right
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

MAX_HOLDS = 500
COLUMNS = (
    "h.id, h.customer_id, h.reason, h.placed_by, p.display_name AS placed_by_name,"
    " h.placed_at, h.released_by, r.display_name AS released_by_name, h.released_at,"
    " h.release_reason"
)
FROM = (
    "legal_hold h JOIN customer c ON c.id = h.customer_id"
    " LEFT JOIN member p ON p.identity_id = h.placed_by"
    " LEFT JOIN member r ON r.identity_id = h.released_by"
)


def _text(raw: str, name: str) -> str:
    cleaned = " ".join(raw.split())
    if not 2 <= len(cleaned) <= 500:
        raise BadUserInput(f"{name} must be 2 to 500 characters", field=name)
    return cleaned


def _hold_id(raw: str) -> int:
    try:
        return int(str(raw))
    except ValueError as exc:
        raise NotFound("no legal hold with this id", field="id") from exc


async def _hold(hold_id: int) -> Any:
    return await raw_connection().fetchrow(f"SELECT {COLUMNS} FROM {FROM} WHERE h.id = $1", hold_id)


async def place_legal_hold(caller: Caller, customer_id: str, reason: str) -> Any:
    """Hold a customer the caller can see (NOT_FOUND otherwise, like a missing one);
    CONFLICT if it is held already. Its marked candidates are unmarked."""
    await check_retention_right(caller, "can_manage_legal_holds")
    uid = parse_customer_id(customer_id)
    cleaned = _text(reason, "reason")
    access = await customer_access(caller)
    sql = Numbered()
    async with raw_connection().savepoint():
        visible = await raw_connection().fetchval(
            f"SELECT COALESCE({sql.add(all_of([access.rows, LIVE]))}, FALSE) FROM customer c"
            f" WHERE c.id = {sql.value(uid)} FOR UPDATE",
            *sql.params,
        )
        if not visible:
            raise NotFound("no customer with this id", field="customerId")
        held = await raw_connection().fetchval(
            "SELECT id FROM legal_hold WHERE customer_id = $1 AND released_at IS NULL", uid
        )
        if held is not None:
            raise Conflict(f"the customer is already under legal hold {held}", field="customerId")
        hold_id = await raw_connection().fetchval(
            "INSERT INTO legal_hold (customer_id, reason, placed_by) VALUES ($1, $2, $3)"
            " RETURNING id",
            uid,
            cleaned,
            caller.id,
        )
        await raw_connection().execute(
            "UPDATE retention_candidate SET status = 'unmarked', unmarked_at = now(),"
            " unmark_reason = $2 WHERE status = 'marked' AND (customer_id = $1"
            " OR (record_type = 'share_request' AND record_id IN"
            " (SELECT request_id FROM share_request_customer WHERE customer_id = $1)))",
            uid,
            f"legal hold {hold_id} placed",
        )
    return await _hold(hold_id)


async def release_legal_hold(caller: Caller, hold_id: str, reason: str) -> Any:
    """Release a hold on a customer the caller can see; CONFLICT if released already."""
    await check_retention_right(caller, "can_manage_legal_holds")
    key = _hold_id(hold_id)
    cleaned = _text(reason, "reason")
    access = await customer_access(caller)
    sql = Numbered()
    async with raw_connection().savepoint():
        row = await raw_connection().fetchrow(
            f"SELECT h.released_at, COALESCE({sql.add(access.rows)}, FALSE) AS visible"
            f" FROM legal_hold h JOIN customer c ON c.id = h.customer_id"
            f" WHERE h.id = {sql.value(key)} FOR UPDATE OF h",
            *sql.params,
        )
        if row is None or not row["visible"]:
            raise NotFound("no legal hold with this id", field="id")
        if row["released_at"] is not None:
            raise Conflict("this legal hold is already released", field="id")
        await raw_connection().execute(
            "UPDATE legal_hold SET released_by = $2, released_at = now(), release_reason = $3"
            " WHERE id = $1",
            key,
            caller.id,
            cleaned,
        )
    return await _hold(key)


async def legal_holds(
    caller: Caller,
    *,
    customer_id: str | None = None,
    active: bool | None = None,
    first: int = 100,
    offset: int = 0,
) -> list[Any]:
    """Holds on customers the caller can see, newest first (for those who manage holds
    or read destruction records)."""
    if caller.kind != "user":
        raise Forbidden("legal holds are for staff accounts, not partner apps")
    if not (
        await has_retention_right(caller, "can_manage_legal_holds")
        or await has_retention_right(caller, "can_read_destruction_records")
    ):
        raise Forbidden(
            "your access does not allow reading legal holds (policy rules"
            " can_manage_legal_holds, can_read_destruction_records)"
        )
    if not 1 <= first <= MAX_HOLDS:
        raise BadUserInput(f"first must be between 1 and {MAX_HOLDS}", field="first")
    if offset < 0:
        raise BadUserInput("offset must be 0 or more", field="offset")
    uid: uuid.UUID | None = None
    if customer_id is not None:
        try:
            uid = uuid.UUID(customer_id)
        except ValueError as exc:
            raise BadUserInput("customerId is not a customer id", field="customerId") from exc
    access = await customer_access(caller)
    sql = Numbered()
    wanted_customer, wanted_active = sql.value(uid), sql.value(active)
    return list(
        await raw_connection().fetch(
            f"SELECT {COLUMNS} FROM {FROM} WHERE {sql.add(access.rows)}"
            f" AND ({wanted_customer}::uuid IS NULL OR h.customer_id = {wanted_customer})"
            f" AND ({wanted_active}::boolean IS NULL"
            f" OR (h.released_at IS NULL) = {wanted_active})"
            f" ORDER BY h.placed_at DESC, h.id DESC"
            f" LIMIT {sql.value(first)} OFFSET {sql.value(offset)}",
            *sql.params,
        )
    )
