"""``customerHistory``, ``pendingChanges``; ``approveChange``, ``rejectChange``,
``withdrawChange``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.changes.types import CustomerChange, CustomerChangeConnection
from dangan.services import approvals, history


def _connection(page: history.ChangePage) -> CustomerChangeConnection:
    return CustomerChangeConnection(
        nodes=[CustomerChange.from_row(row) for row in page.rows],
        has_next_page=page.has_next,
        end_cursor=page.end_cursor,
    )


async def customer_history(
    info: Info, id: strawberry.ID, first: int = 50, after: str | None = None
) -> CustomerChangeConnection:
    """The customer's changes, newest first; values as your policy lets you see them."""
    page = await history.customer_history(info.context.require_caller(), id, first, after)
    return _connection(page)


async def pending_changes(
    info: Info, first: int = 50, after: str | None = None
) -> CustomerChangeConnection:
    """Changes waiting for approval that you may approve or reject (not your own)."""
    page = await approvals.pending_for_approver(info.context.require_caller(), first, after)
    return _connection(page)


async def _shown(info: Info, change_id: int) -> CustomerChange:
    row = await history.change_for_caller(info.context.require_caller(), change_id)
    return CustomerChange.from_row(row)


async def approve_change(
    info: Info, id: strawberry.ID, comment: str | None = None
) -> CustomerChange:
    """Apply a pending change someone else made (CONFLICT if its fields moved since)."""
    change_id = await approvals.approve_change(info.context.require_caller(), id, comment)
    return await _shown(info, change_id)


async def reject_change(info: Info, id: strawberry.ID, comment: str) -> CustomerChange:
    """Refuse a pending change someone else made; the old values stand."""
    change_id = await approvals.reject_change(info.context.require_caller(), id, comment)
    return await _shown(info, change_id)


async def withdraw_change(info: Info, id: strawberry.ID) -> CustomerChange:
    """Take back a pending change you made."""
    change_id = await approvals.withdraw_change(info.context.require_caller(), id)
    return await _shown(info, change_id)
