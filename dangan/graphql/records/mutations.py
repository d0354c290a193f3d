"""Adding, changing and removing a customer's records. Each answers with the record as
your policy lets you see it (hidden fields null, in ``extensions.redacted``)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from dangan.graphql.records import inputs
from dangan.graphql.records.types import (
    Communication,
    Complaint,
    ContactPerson,
    Contract,
    CustomerNeed,
    CustomerRecordType,
    Opportunity,
    PaymentRecord,
    Purchase,
    RecordObject,
    SatisfactionSurvey,
    columns_for,
    from_rows,
)
from dangan.graphql.selection import child_names
from dangan.models.records import RECORD_TYPES
from dangan.services import records


def _values(given: Any) -> dict[str, Any]:
    """Input fields by column; for changes only those the caller sent."""
    return {
        key: value.value if hasattr(value, "value") else value
        for key, value in vars(given).items()
        if value is not strawberry.UNSET
    }


async def _answer(info: Info, cls: type[RecordObject], table: str, record_id: str) -> Any:
    columns = columns_for(table, child_names(info.selected_fields[0].selections, ()))
    row = await records.record_for_caller(
        info.context.require_caller(), RECORD_TYPES[table], record_id, columns
    )
    return from_rows(cls, table, [row])[0]


async def _add(
    info: Info, cls: type[RecordObject], table: str, customer_id: str, given: Any
) -> Any:
    caller = info.context.require_caller()
    new_id = await records.add_record(caller, RECORD_TYPES[table], customer_id, _values(given))
    return await _answer(info, cls, table, new_id)


async def _update(
    info: Info, cls: type[RecordObject], table: str, record_id: str, given: Any
) -> Any:
    caller = info.context.require_caller()
    await records.update_record(caller, RECORD_TYPES[table], record_id, _values(given))
    return await _answer(info, cls, table, record_id)


async def add_contact_person(
    info: Info, customer_id: strawberry.ID, input: inputs.ContactPersonInput
) -> ContactPerson:
    """Add a contact person (联系人) to a customer you may edit."""
    return await _add(info, ContactPerson, "contact_person", customer_id, input)


async def add_communication(
    info: Info, customer_id: strawberry.ID, input: inputs.CommunicationInput
) -> Communication:
    """Record a communication (沟通记录); staffId defaults to you."""
    return await _add(info, Communication, "communication", customer_id, input)


async def add_opportunity(
    info: Info, customer_id: strawberry.ID, input: inputs.OpportunityInput
) -> Opportunity:
    return await _add(info, Opportunity, "opportunity", customer_id, input)


async def add_purchase(
    info: Info, customer_id: strawberry.ID, input: inputs.PurchaseInput
) -> Purchase:
    return await _add(info, Purchase, "purchase", customer_id, input)


async def add_contract(
    info: Info, customer_id: strawberry.ID, input: inputs.ContractInput
) -> Contract:
    """Add a contract or cooperation agreement; its number is unique in the tenant."""
    return await _add(info, Contract, "contract", customer_id, input)


async def add_payment_record(
    info: Info, customer_id: strawberry.ID, input: inputs.PaymentRecordInput
) -> PaymentRecord:
    return await _add(info, PaymentRecord, "payment_record", customer_id, input)


async def add_customer_need(
    info: Info, customer_id: strawberry.ID, input: inputs.CustomerNeedInput
) -> CustomerNeed:
    return await _add(info, CustomerNeed, "customer_need", customer_id, input)


async def add_complaint(
    info: Info, customer_id: strawberry.ID, input: inputs.ComplaintInput
) -> Complaint:
    return await _add(info, Complaint, "complaint", customer_id, input)


async def add_satisfaction_survey(
    info: Info, customer_id: strawberry.ID, input: inputs.SatisfactionSurveyInput
) -> SatisfactionSurvey:
    return await _add(info, SatisfactionSurvey, "satisfaction_survey", customer_id, input)


async def update_contract(
    info: Info, id: strawberry.ID, input: inputs.UpdateContractInput
) -> Contract:
    """Move a contract's status forward (DRAFT → ACTIVE → EXPIRED or TERMINATED)."""
    return await _update(info, Contract, "contract", id, input)


async def update_complaint(
    info: Info, id: strawberry.ID, input: inputs.UpdateComplaintInput
) -> Complaint:
    """Change a complaint's status or resolution (resolving needs a resolution)."""
    return await _update(info, Complaint, "complaint", id, input)


async def update_opportunity(
    info: Info, id: strawberry.ID, input: inputs.UpdateOpportunityInput
) -> Opportunity:
    """Change an opportunity's stage, expected amount or close date."""
    return await _update(info, Opportunity, "opportunity", id, input)


async def remove_customer_record(
    info: Info, type: CustomerRecordType, id: strawberry.ID, reason: str
) -> bool:
    """Delete a record of a customer you may edit; the reason and its values are kept
    in the customer's change record."""
    caller = info.context.require_caller()
    await records.remove_record(caller, RECORD_TYPES[type.value], id, reason)
    return True
