"""The record fields of ``Customer`` (``contactPersons``, ``communications``, …,
``overdueAmount``), batched: one DataLoader per record type, selected columns and
``first`` makes one SQL query for all the customers of a page.

A record class hidden from the caller on a customer makes the field null, its path
listed in ``extensions.redacted``; an empty list means there is nothing to see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from dangan.graphql.records.types import (
    Communication,
    Complaint,
    ContactPerson,
    Contract,
    CustomerNeed,
    Opportunity,
    PaymentRecord,
    Purchase,
    RecordObject,
    SatisfactionSurvey,
    columns_for,
    from_rows,
)
from dangan.graphql.selection import child_names
from dangan.models.records import (
    COMMUNICATION,
    COMPLAINT,
    CONTACT_PERSON,
    CONTRACT,
    CUSTOMER_NEED,
    OPPORTUNITY,
    PAYMENT_RECORD,
    PURCHASE,
    SATISFACTION_SURVEY,
    RecordType,
)
from dangan.services import records
from dangan.services.records.reads import check_first

DEFAULT_FIRST = 20


def response_path(info: Info) -> str:
    return ".".join(str(key) for key in info.path.as_list())


def _loader(info: Info, key: tuple[object, ...], fetch: Callable[[list[str]], Any]) -> Any:
    """The request's loader for ``key``, made on first use."""
    loaders = info.context.record_loaders
    if key not in loaders:

        async def load(customer_ids: list[str]) -> list[Any]:
            found = await fetch(customer_ids)
            return [found.get(uuid.UUID(customer_id)) for customer_id in customer_ids]

        loaders[key] = DataLoader(load_fn=load)
    return loaders[key]


async def _records(
    root: Any, info: Info, record_type: RecordType, cls: type[RecordObject], first: int
) -> list[RecordObject] | None:
    check_first(first)
    caller = info.context.require_caller()
    table = record_type.table
    columns = columns_for(table, child_names(info.selected_fields[0].selections, ()))

    async def fetch(customer_ids: Sequence[str]) -> Any:
        return await records.records_for_customers(
            caller, record_type, customer_ids, columns, first
        )

    found = await _loader(info, (table, tuple(columns), first), fetch).load(root.id)
    if found is None or found.hidden:
        info.context.redacted.append(response_path(info))
        return None
    return from_rows(cls, table, found.rows)


async def contact_persons(
    root: Any, info: Info, first: int = DEFAULT_FIRST
) -> list[ContactPerson] | None:
    """联系人, newest first (1 to 100)."""
    return await _records(root, info, CONTACT_PERSON, ContactPerson, first)


async def communications(
    root: Any, info: Info, first: int = DEFAULT_FIRST
) -> list[Communication] | None:
    """沟通记录, newest first (1 to 100)."""
    return await _records(root, info, COMMUNICATION, Communication, first)


async def opportunities(
    root: Any, info: Info, first: int = DEFAULT_FIRST
) -> list[Opportunity] | None:
    """商机, newest first (1 to 100)."""
    return await _records(root, info, OPPORTUNITY, Opportunity, first)


async def purchases(root: Any, info: Info, first: int = DEFAULT_FIRST) -> list[Purchase] | None:
    """购买记录, newest first by purchase date (1 to 100)."""
    return await _records(root, info, PURCHASE, Purchase, first)


async def contracts(root: Any, info: Info, first: int = DEFAULT_FIRST) -> list[Contract] | None:
    """合同 and 合作协议, newest first (1 to 100)."""
    return await _records(root, info, CONTRACT, Contract, first)


async def payment_records(
    root: Any, info: Info, first: int = DEFAULT_FIRST
) -> list[PaymentRecord] | None:
    """付款记录, latest due date first (1 to 100); financial information."""
    return await _records(root, info, PAYMENT_RECORD, PaymentRecord, first)


async def needs(root: Any, info: Info, first: int = DEFAULT_FIRST) -> list[CustomerNeed] | None:
    """需求信息, newest first (1 to 100)."""
    return await _records(root, info, CUSTOMER_NEED, CustomerNeed, first)


async def complaints(root: Any, info: Info, first: int = DEFAULT_FIRST) -> list[Complaint] | None:
    """客户投诉, newest first (1 to 100)."""
    return await _records(root, info, COMPLAINT, Complaint, first)


async def satisfaction_surveys(
    root: Any, info: Info, first: int = DEFAULT_FIRST
) -> list[SatisfactionSurvey] | None:
    """满意度调查, newest first (1 to 100)."""
    return await _records(root, info, SATISFACTION_SURVEY, SatisfactionSurvey, first)


async def overdue_amount(root: Any, info: Info) -> str | None:
    """What is unpaid on payments due before today: an amount, a range where you see
    financial information masked, or null (redacted) where you don't see it."""
    caller = info.context.require_caller()

    async def fetch(customer_ids: Sequence[str]) -> Any:
        return await records.overdue_amounts(caller, customer_ids)

    found = await _loader(info, ("overdue_amount",), fetch).load(root.id)
    if found is None or found.hidden:
        info.context.redacted.append(response_path(info))
        return None
    value: str | None = found.value
    return value
