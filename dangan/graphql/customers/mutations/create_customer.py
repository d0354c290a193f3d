"""``createCustomer``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.types import CreateCustomerInput, Customer
from dangan.services import customers


async def create_customer(info: Info, input: CreateCustomerInput) -> Customer:
    values = {
        key: value.value if hasattr(value, "value") else value
        for key, value in strawberry.asdict(input).items()
    }
    row = await customers.create_customer(info.context.require_caller(), values)
    return Customer.from_row(row)
