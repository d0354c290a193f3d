"""``updateCustomer`` with optimistic concurrency on ``version``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.inputs import UpdateCustomerInput
from dangan.graphql.customers.queries import columns_for
from dangan.graphql.customers.types import Customer
from dangan.graphql.selection import child_names
from dangan.services import customers


async def update_customer(
    info: Info,
    id: strawberry.ID,
    version: int,
    input: UpdateCustomerInput,
    reason: str | None = None,
) -> Customer:
    """Change the given fields if the customer is still at ``version`` (else CONFLICT).
    Changes the policy puts up for approval wait (see ``pendingChanges`` on the
    customer) and the old values stand until they are approved; ``reason`` goes into the
    customer's history."""
    caller = info.context.require_caller()
    changes = {
        key: value.value if hasattr(value, "value") else value
        for key, value in vars(input).items()
        if value is not strawberry.UNSET
    }
    await customers.update_customer(caller, id, version, changes, reason)
    columns = columns_for(child_names(info.selected_fields, ("updateCustomer",)))
    row = await customers.get_customer_for_caller(caller, id, columns, just_written=True)
    return Customer.from_row(row)
