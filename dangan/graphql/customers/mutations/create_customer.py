"""``createCustomer``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.inputs import CreateCustomerInput
from dangan.graphql.customers.queries import columns_for
from dangan.graphql.customers.types import Customer
from dangan.graphql.selection import child_names
from dangan.services import customers


async def create_customer(
    info: Info, input: CreateCustomerInput, allow_possible_duplicate: bool = False
) -> Customer:
    """Create a customer; the answer shows it as your policy lets you see it. A customer
    with the same ID number or USCC as an existing one is refused (CONFLICT); one with
    the same mobile number or a similar name too, unless ``allowPossibleDuplicate``."""
    caller = info.context.require_caller()
    values = {
        key: value.value if hasattr(value, "value") else value
        for key, value in strawberry.asdict(input).items()
    }
    new_id = await customers.create_customer(
        caller, values, allow_possible_duplicate=allow_possible_duplicate
    )
    columns = columns_for(child_names(info.selected_fields, ("createCustomer",)))
    row = await customers.get_customer_for_caller(caller, new_id, columns, just_written=True)
    return Customer.from_row(row)
