"""Share requests: ask, approve, reject, revoke; and the list a caller may see."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.queries import conditions_from
from dangan.graphql.sharing.types import RequestShareInput, ShareRequest, ShareStatus
from dangan.services import sharing


async def share_requests(info: Info, status: ShareStatus | None = None) -> list[ShareRequest]:
    """Requests you made, that share something with you, or that you may decide on."""
    rows = await sharing.share_requests_for(
        info.context.require_caller(), status.value if status else None
    )
    return [ShareRequest.from_row(row) for row in rows]


async def request_share(info: Info, input: RequestShareInput) -> ShareRequest:
    """Ask to share customers you can see; nothing is shared until it is approved."""
    row = await sharing.request_share(
        info.context.require_caller(),
        grantee=sharing.Grantee(kind=input.grantee.kind.value, id=input.grantee.id),
        classes=input.classes,
        level=input.level.value,
        purpose=input.purpose,
        until=input.until,
        customer_ids=[str(i) for i in input.customer_ids or []],
        conditions=conditions_from(input.where),
    )
    return ShareRequest.from_row(row)


async def approve_share(info: Info, id: strawberry.ID, comment: str) -> ShareRequest:
    row = await sharing.decide_share(
        info.context.require_caller(), id, approve=True, comment=comment
    )
    return ShareRequest.from_row(row)


async def reject_share(info: Info, id: strawberry.ID, comment: str) -> ShareRequest:
    row = await sharing.decide_share(
        info.context.require_caller(), id, approve=False, comment=comment
    )
    return ShareRequest.from_row(row)


async def revoke_share(info: Info, id: strawberry.ID, reason: str) -> ShareRequest:
    row = await sharing.revoke_share(info.context.require_caller(), id, reason=reason)
    return ShareRequest.from_row(row)
