"""共享 / 借阅: sharing customers with a colleague, a department or a partner app.

A request names customers (by id, or by conditions resolved when it is made), the
grantee, the field classes and level, a purpose and an end date. It counts only once
approved and until that date (the ``share_grant`` view, which the policy's
``customer.grants`` relation reads). The approver is whoever the policy's
``can_approve_share`` allows for every customer in the request — never the requester.
Every state change is recorded in ``share_event`` with who and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dangan.audit.actions import ActionLog
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.models.archive import SENSITIVITY_CLASSES
from dangan.services.callers import Caller
from dangan.services.customers.conditions import Condition, condition_predicate
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

GranteeKind = Literal["user", "department", "app"]
MAX_CUSTOMERS = 1000
MAX_DAYS = 366
_COLUMNS = (
    "id, grantee_user_id, grantee_department_id, grantee_app_id, classes, level, purpose,"
    " valid_until, status, requested_by, requested_at, decided_by, decided_at, decision_comment"
)


@dataclass(frozen=True)
class Grantee:
    kind: GranteeKind
    id: int


def _actor(caller: Caller) -> tuple[str, int]:
    return caller.kind, caller.id


async def _record(
    request_id: uuid.UUID, event: str, caller: Caller | None, reason: str | None
) -> None:
    kind, actor_id = _actor(caller) if caller else ("system", None)
    await raw_connection().execute(
        "INSERT INTO share_event (request_id, event, actor_kind, actor_id, reason)"
        " VALUES ($1, $2, $3, $4, $5)",
        request_id,
        event,
        kind,
        actor_id,
        reason,
    )


def parse_request_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotFound("no share request with this id") from exc


async def _check_grantee(grantee: Grantee) -> None:
    table = {
        "user": ("member", "identity_id", "active"),
        "department": ("department", "id", "TRUE"),
        "app": ("partner_app", "id", "active"),
    }[grantee.kind]
    name, key, active = table
    found = await raw_connection().fetchval(
        f"SELECT 1 FROM {name} WHERE {key} = $1 AND {active}", grantee.id
    )
    if not found:
        raise BadUserInput(f"no {grantee.kind} {grantee.id} in this tenant", field="grantee")


async def _visible_ids(
    caller: Caller, customer_ids: Sequence[str], conditions: Sequence[Condition]
) -> list[uuid.UUID]:
    """The customers of the request, all of which the requester must be able to see:
    an id they can't see is NOT_FOUND, exactly like a missing one."""
    access = await customer_access(caller)
    sql = Numbered()
    if customer_ids:
        try:
            wanted = list(dict.fromkeys(uuid.UUID(raw) for raw in customer_ids))
        except (ValueError, TypeError) as exc:
            raise NotFound("no customer with this id", field="customerIds") from exc
        rows = await raw_connection().fetch(
            f"SELECT c.id FROM customer c WHERE c.id = ANY({sql.value(wanted)})"
            f" AND {sql.add(access.rows)}",
            *sql.params,
        )
        if len(rows) != len(wanted):
            raise NotFound("no customer with this id", field="customerIds")
        return wanted
    where = all_of([access.rows, *[await condition_predicate(access, c) for c in conditions]])
    rows = await raw_connection().fetch(
        f"SELECT c.id FROM customer c WHERE {sql.add(where)} LIMIT {MAX_CUSTOMERS + 1}",
        *sql.params,
    )
    if not rows:
        raise BadUserInput("the conditions match no customer you can see", field="where")
    if len(rows) > MAX_CUSTOMERS:
        raise BadUserInput(f"a request covers at most {MAX_CUSTOMERS} customers", field="where")
    return [row["id"] for row in rows]


def _check_terms(classes: Sequence[str], level: str, purpose: str, until: datetime) -> str:
    unknown = sorted(set(classes) - set(SENSITIVITY_CLASSES))
    if unknown or not classes:
        raise BadUserInput(
            f"classes must be among {', '.join(SENSITIVITY_CLASSES)}", field="classes"
        )
    if level not in ("full", "masked"):
        raise BadUserInput("level must be full or masked", field="level")
    purpose = " ".join(purpose.split())
    if not 1 <= len(purpose) <= 500:
        raise BadUserInput("purpose must be 1 to 500 characters", field="purpose")
    now = datetime.now(UTC)
    if until.tzinfo is None:
        raise BadUserInput(
            "until needs a time zone (e.g. 2026-12-31T18:00:00+08:00)", field="until"
        )
    if not now < until <= now + timedelta(days=MAX_DAYS):
        raise BadUserInput(f"until must be in the next {MAX_DAYS} days", field="until")
    return purpose


async def request_share(
    caller: Caller,
    *,
    grantee: Grantee,
    classes: Sequence[str],
    level: str,
    purpose: str,
    until: datetime,
    customer_ids: Sequence[str] = (),
    conditions: Sequence[Condition] = (),
) -> Any:
    """File a pending request (nothing is shared until someone approves it)."""
    if caller.kind != "user":
        raise Forbidden("only members of staff may request shares")
    if bool(customer_ids) == bool(conditions):
        raise BadUserInput("give either customerIds or where", field="customerIds")
    purpose = _check_terms(classes, level, purpose, until)
    async with raw_connection().savepoint():
        await _check_grantee(grantee)
        ids = await _visible_ids(caller, customer_ids, conditions)
        column = {
            "user": "grantee_user_id",
            "department": "grantee_department_id",
            "app": "grantee_app_id",
        }[grantee.kind]
        row = await raw_connection().fetchrow(
            f"INSERT INTO share_request ({column}, classes, level, purpose, valid_until,"
            f" requested_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            grantee.id,
            sorted(set(classes)),
            level,
            purpose,
            until,
            caller.id,
        )
        await raw_connection().executemany(
            "INSERT INTO share_request_customer (request_id, customer_id) VALUES ($1, $2)",
            [(row["id"], customer_id) for customer_id in ids],
        )
        await _record(row["id"], "requested", caller, purpose)
    return row


async def _load_for_decision(caller: Caller, request_id: str) -> Any:
    uid = parse_request_id(request_id)
    row = await raw_connection().fetchrow(
        f"SELECT {_COLUMNS} FROM share_request WHERE id = $1 FOR UPDATE", uid
    )
    if row is None or not await _may_view(caller, row):
        raise NotFound("no share request with this id")
    return row


async def _may_approve(caller: Caller, request_id: uuid.UUID) -> bool:
    """True when the policy lets the caller approve a share of every customer in it."""
    access = await customer_access(caller)
    sql = Numbered()
    allowed = all_of([access.rows, access.can("approve_share")])
    refused = await raw_connection().fetchval(
        f"SELECT count(*) FROM share_request_customer rc"
        f" JOIN customer c ON c.id = rc.customer_id WHERE rc.request_id = {sql.value(request_id)}"
        f" AND NOT COALESCE({sql.add(allowed)}, FALSE)",
        *sql.params,
    )
    return refused == 0


async def _may_view(caller: Caller, row: Any) -> bool:
    if caller.kind != "user":
        return False
    if caller.id in (row["requested_by"], row["grantee_user_id"]):
        return True
    if (
        row["grantee_department_id"] is not None
        and row["grantee_department_id"] == caller.department_id
    ):
        return True
    return await _may_approve(caller, row["id"])


async def decide_share(caller: Caller, request_id: str, *, approve: bool, comment: str) -> Any:
    """Approve or reject a pending request, with a comment."""
    comment = " ".join(comment.split())
    if not 1 <= len(comment) <= 500:
        raise BadUserInput("comment must be 1 to 500 characters", field="comment")
    async with raw_connection().savepoint():
        row = await _load_for_decision(caller, request_id)
        if row["status"] != "pending":
            raise Conflict(f"the request is already {row['status']}", field="id")
        if row["requested_by"] == caller.id:
            raise Forbidden("nobody approves their own request")
        if not await _may_approve(caller, row["id"]):
            raise Forbidden("your access does not allow deciding on this request")
        if approve and row["valid_until"] <= datetime.now(UTC):
            raise Conflict("the request has already run out; ask for a new one", field="id")
        status = "approved" if approve else "rejected"
        updated = await raw_connection().fetchrow(
            f"UPDATE share_request SET status = $2, decided_by = $3, decided_at = now(),"
            f" decision_comment = $4 WHERE id = $1 RETURNING {_COLUMNS}",
            row["id"],
            status,
            caller.id,
            comment,
        )
        await _record(row["id"], status, caller, comment)
    return updated


async def revoke_share(caller: Caller, request_id: str, *, reason: str) -> Any:
    """Withdraw a pending or approved request at once (requester or an approver)."""
    reason = " ".join(reason.split())
    if not 1 <= len(reason) <= 500:
        raise BadUserInput("reason must be 1 to 500 characters", field="reason")
    async with raw_connection().savepoint():
        row = await _load_for_decision(caller, request_id)
        if row["status"] not in ("pending", "approved"):
            raise Conflict(f"the request is already {row['status']}", field="id")
        if row["requested_by"] != caller.id and not await _may_approve(caller, row["id"]):
            raise Forbidden("only the requester or an approver may revoke a share")
        updated = await raw_connection().fetchrow(
            f"UPDATE share_request SET status = 'revoked' WHERE id = $1 RETURNING {_COLUMNS}",
            row["id"],
        )
        await _record(row["id"], "revoked", caller, reason)
    return updated


async def expire_shares(log: ActionLog) -> int:
    """Mark approved requests past their end as expired (the grants already stopped
    counting at that instant: the share_grant view checks the date itself), and record
    ``share.expire`` with them and their customers in the same transaction."""
    rows = await raw_connection().fetch(
        "UPDATE share_request SET status = 'expired'"
        " WHERE status = 'approved' AND valid_until <= now() RETURNING id"
    )
    for row in rows:
        await _record(row["id"], "expired", None, "end date reached")
    if rows:
        ids = [row["id"] for row in rows]
        customers = await raw_connection().fetch(
            "SELECT DISTINCT customer_id FROM share_request_customer"
            " WHERE request_id = ANY($1::uuid[]) ORDER BY customer_id",
            ids,
        )
        await log.record(
            "share.expire",
            details={"expired": len(ids), "shareRequests": [str(i) for i in sorted(ids)]},
            customers=[row["customer_id"] for row in customers],
        )
    return len(rows)


async def share_requests_for(caller: Caller, status: str | None = None) -> list[Any]:
    """Requests the caller made, receives, or may decide on (newest first), in one query."""
    if caller.kind != "user":
        return []
    access = await customer_access(caller)
    sql = Numbered()
    allowed = sql.add(all_of([access.rows, access.can("approve_share")]))
    me, department, wanted = (
        sql.value(caller.id),
        sql.value(caller.department_id),
        sql.value(status),
    )
    return list(
        await raw_connection().fetch(
            f"SELECT {_COLUMNS} FROM share_request r"
            f" WHERE ({wanted}::text IS NULL OR status = {wanted})"
            f" AND (requested_by = {me} OR grantee_user_id = {me}"
            f" OR grantee_department_id = {department}"
            f" OR NOT EXISTS (SELECT 1 FROM share_request_customer rc"
            f" JOIN customer c ON c.id = rc.customer_id WHERE rc.request_id = r.id"
            f" AND NOT COALESCE({allowed}, FALSE)))"
            f" ORDER BY requested_at DESC LIMIT 500",
            *sql.params,
        )
    )


async def share_details(request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Customer counts and event history per request (for the API's nested fields)."""
    counts = await raw_connection().fetch(
        "SELECT request_id, count(*) AS n FROM share_request_customer"
        " WHERE request_id = ANY($1::uuid[]) GROUP BY request_id",
        list(request_ids),
    )
    events = await raw_connection().fetch(
        "SELECT request_id, event, actor_kind, actor_id, reason, at FROM share_event"
        " WHERE request_id = ANY($1::uuid[]) ORDER BY id",
        list(request_ids),
    )
    details: dict[uuid.UUID, Any] = {rid: {"customers": 0, "events": []} for rid in request_ids}
    for row in counts:
        details[row["request_id"]]["customers"] = row["n"]
    for row in events:
        details[row["request_id"]]["events"].append(row)
    return details
