"""Candidates in the API: the notices owners read, the list compliance reviews, and the
approvals a rule may require before its purge.

- Whoever reads destruction records or manages retention (the policy) sees every
  candidate.
- Everyone else on the staff sees the candidates of customers they can see — the
  owner's notice that their customer, or its old communications, will be destroyed on
  ``dueAt`` — and of the share requests they made. Nothing about a customer they can't
  see.
- Whoever the policy's ``can_approve_purge`` allows approves candidates of customers
  they can see (and share requests); the destruction record names the approver.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.authz.predicates import TRUE, Numbered, Predicate, any_of
from dangan.authz.retention import check_retention_right, has_retention_right
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.services.retention.rules import RULE_SPECS
from dangan.tenants.scope import raw_connection

MAX_PAGE = 500
STATUSES = ("marked", "unmarked")
COLUMNS = (
    "k.id, k.rule, k.record_type, k.record_id, k.customer_id, k.owner_id, k.basis_at,"
    " k.reason, k.marked_at, k.due_at, k.status, k.approved_by, a.display_name AS"
    " approved_by_name, k.approved_at, k.unmarked_at, k.unmark_reason, r.requires_approval"
)
FROM = (
    "retention_candidate k JOIN retention_rule r ON r.rule = k.rule"
    " LEFT JOIN customer c ON c.id = k.customer_id"
    " LEFT JOIN member a ON a.identity_id = k.approved_by"
)


@dataclass(frozen=True)
class CandidateFilter:
    rule: str | None = None
    status: str | None = None
    customer_id: str | None = None
    mine: bool = False  # only the notices for the caller (as the owner)


async def _visible(caller: Caller, *, officer: bool) -> Predicate:
    """Which candidates (alias ``k``, its customer ``c``) the caller may see."""
    if officer:
        return TRUE
    access = await customer_access(caller)
    rows = access.rows
    customer = Predicate(f"c.id IS NOT NULL AND COALESCE(({rows.sql}), FALSE)", rows.params)
    own_share = Predicate("k.record_type = 'share_request' AND k.owner_id = ?", (caller.id,))
    return any_of([customer, own_share])


async def _officer(caller: Caller) -> bool:
    return await has_retention_right(
        caller, "can_read_destruction_records"
    ) or await has_retention_right(caller, "can_manage_retention")


def _check_filter(flt: CandidateFilter, first: int, offset: int) -> uuid.UUID | None:
    if flt.rule is not None and flt.rule not in RULE_SPECS:
        raise BadUserInput(f"rule must be one of {', '.join(RULE_SPECS)}", field="rule")
    if flt.status is not None and flt.status not in STATUSES:
        raise BadUserInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    if offset < 0:
        raise BadUserInput("offset must be 0 or more", field="offset")
    if flt.customer_id is None:
        return None
    try:
        return uuid.UUID(flt.customer_id)
    except ValueError as exc:
        raise BadUserInput("customerId is not a customer id", field="customerId") from exc


async def list_candidates(
    caller: Caller, flt: CandidateFilter, *, first: int = 100, offset: int = 0
) -> list[Any]:
    """The candidates the caller may see, soonest due first (marked before unmarked)."""
    if caller.kind != "user":
        raise Forbidden("retention candidates are for staff accounts, not partner apps")
    customer = _check_filter(flt, first, offset)
    visible = await _visible(caller, officer=await _officer(caller))
    sql = Numbered()
    rule, status, wanted = sql.value(flt.rule), sql.value(flt.status), sql.value(customer)
    mine = f" AND k.owner_id = {sql.value(caller.id)}" if flt.mine else ""
    return list(
        await raw_connection().fetch(
            f"SELECT {COLUMNS} FROM {FROM} WHERE {sql.add(visible)}"
            f" AND ({rule}::text IS NULL OR k.rule = {rule})"
            f" AND ({status}::text IS NULL OR k.status = {status})"
            f" AND ({wanted}::uuid IS NULL OR k.customer_id = {wanted}){mine}"
            f" ORDER BY k.status, k.due_at, k.id"
            f" LIMIT {sql.value(first)} OFFSET {sql.value(offset)}",
            *sql.params,
        )
    )


def _ids(raw: Sequence[str]) -> list[int]:
    if not 1 <= len(raw) <= MAX_PAGE:
        raise BadUserInput(f"give 1 to {MAX_PAGE} candidate ids", field="ids")
    try:
        return sorted({int(str(value)) for value in raw})
    except ValueError as exc:
        raise NotFound("no retention candidate with this id", field="ids") from exc


async def approve_candidates(caller: Caller, ids: Sequence[str]) -> list[Any]:
    """Approve the purge of marked candidates (a rule that requires an approval purges
    nothing without one). Candidates approved already keep their first approval.
    NOT_FOUND for a candidate the caller can't see, CONFLICT for an unmarked one."""
    await check_retention_right(caller, "can_approve_purge")
    wanted = _ids(ids)
    access = await customer_access(caller)
    rows = access.rows
    visible = any_of(
        [
            Predicate(f"c.id IS NOT NULL AND COALESCE(({rows.sql}), FALSE)", rows.params),
            Predicate("k.record_type = 'share_request'"),
        ]
    )
    sql = Numbered()
    async with raw_connection().savepoint():
        found = await raw_connection().fetch(
            f"SELECT k.id, k.status FROM {FROM} WHERE k.id = ANY({sql.value(wanted)}::bigint[])"
            f" AND {sql.add(visible)} FOR UPDATE OF k",
            *sql.params,
        )
        if len(found) != len(wanted):
            raise NotFound("no retention candidate with this id", field="ids")
        unmarked = [row["id"] for row in found if row["status"] != "marked"]
        if unmarked:
            raise Conflict(
                f"candidate {unmarked[0]} is no longer marked: there is nothing to approve",
                field="ids",
            )
        await raw_connection().execute(
            "UPDATE retention_candidate SET approved_by = $2, approved_at = now()"
            " WHERE id = ANY($1::bigint[]) AND approved_by IS NULL",
            wanted,
            caller.id,
        )
        return list(
            await raw_connection().fetch(
                f"SELECT {COLUMNS} FROM {FROM} WHERE k.id = ANY($1::bigint[]) ORDER BY k.id",
                wanted,
            )
        )
