"""``revealField``: the full value of a field you see masked, where policy allows."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.types import FIELD_COLUMNS
from dangan.services.reveals import reveal_field as do_reveal


@strawberry.type
class RevealedField:
    customer_id: strawberry.ID
    field: str
    value: str | None


async def reveal_field(
    info: Info, customer_id: strawberry.ID, field: str, reason: str
) -> RevealedField:
    """Show one masked value in full (e.g. ``idNumber``); the reason is kept on record."""
    value = await do_reveal(
        info.context.require_caller(), customer_id, FIELD_COLUMNS.get(field), field, reason
    )
    return RevealedField(customer_id=customer_id, field=field, value=value)
