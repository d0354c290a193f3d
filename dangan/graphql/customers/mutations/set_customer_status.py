"""``setCustomerStatus``: ACTIVE, INVALID or EXPIRED, with a reason on record."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.queries import columns_for
from dangan.graphql.customers.types import Customer
from dangan.graphql.selection import child_names
from dangan.services import customers
from dangan.services.lifecycle import set_customer_status as do_set_status


@strawberry.enum(description="The statuses a caller may set (MERGED comes from a merge)")
class CustomerStatusInput(Enum):
    ACTIVE = "ACTIVE"
    INVALID = "INVALID"
    EXPIRED = "EXPIRED"


async def set_customer_status(
    info: Info, id: strawberry.ID, status: CustomerStatusInput, reason: str
) -> Customer:
    """Change the lifecycle status of a customer you may edit; recorded in its history."""
    caller = info.context.require_caller()
    await do_set_status(caller, id, status.value, reason)
    columns = columns_for(child_names(info.selected_fields, ("setCustomerStatus",)))
    row = await customers.get_customer_for_caller(caller, id, columns, just_written=True)
    return Customer.from_row(row)
