"""The customer archive: reading (lists, details) and writing (create, update)."""

from dangan.services.customers.conditions import Condition
from dangan.services.customers.paging import Order
from dangan.services.customers.reads import (
    Page,
    departments_by_id,
    get_customer_for_caller,
    list_customers,
    members_by_id,
)
from dangan.services.customers.writes import create_customer, update_customer

__all__ = [
    "Condition",
    "Order",
    "Page",
    "create_customer",
    "departments_by_id",
    "get_customer_for_caller",
    "list_customers",
    "members_by_id",
    "update_customer",
]
