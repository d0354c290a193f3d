"""``updateCustomer`` with optimistic concurrency on ``version``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.types import Customer, UpdateCustomerInput
from dangan.services import customers


async def update_customer(
    info: Info, id: strawberry.ID, version: int, input: UpdateCustomerInput
) -> Customer:
    """Change the given fields if the customer is still at ``version`` (else CONFLICT)."""
    changes = {
        key: value.value if hasattr(value, "value") else value
        for key, value in vars(input).items()
        if value is not strawberry.UNSET
    }
    row = await customers.update_customer(info.context.require_caller(), id, version, changes)
    return Customer.from_row(row)
