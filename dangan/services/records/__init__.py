"""Records of a customer (contacts, communications, opportunities, purchases, contracts,
payments, needs, complaints, surveys): reading them for pages of customers, adding,
changing and removing them, and the overdue amount of a customer's payments."""

from dangan.services.records.reads import (
    CustomerRecords,
    OverdueAmount,
    overdue_amounts,
    record_for_caller,
    records_for_customers,
)
from dangan.services.records.writes import add_record, remove_record, update_record

__all__ = [
    "CustomerRecords",
    "OverdueAmount",
    "add_record",
    "overdue_amounts",
    "record_for_caller",
    "records_for_customers",
    "remove_record",
    "update_record",
]
