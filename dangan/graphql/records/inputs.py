"""Inputs of the record mutations. Field names are the columns' (camelCase in the API);
values are checked by :mod:`dangan.services.records.inputs`, which names the field of
any problem (``summary must be 1 to 4000 characters``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry

_TZ = "ISO time with a time zone, e.g. 2024-05-01T10:00:00+08:00"


@strawberry.input
class ContactPersonInput:
    name: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    wechat: str | None = None
    is_primary: bool = False


@strawberry.input
class CommunicationInput:
    channel: str = strawberry.field(description="VISIT, CALL, MEETING, EMAIL or WECHAT")
    occurred_at: datetime = strawberry.field(description=_TZ)
    summary: str
    staff_id: int | None = strawberry.field(default=None, description="Default: you")
    contact_person_id: strawberry.ID | None = None
    next_step: str | None = None
    next_step_due: date | None = None


@strawberry.input
class OpportunityInput:
    title: str
    stage: str = "LEAD"
    expected_amount: Decimal | None = None
    expected_close: date | None = None


@strawberry.input
class PurchaseInput:
    order_no: str
    product: str
    quantity: Decimal
    amount: Decimal
    purchased_on: date
    cost: Decimal | None = None


@strawberry.input
class ContractInput:
    number: str = strawberry.field(description="Unique in the tenant")
    title: str
    kind: str = "CONTRACT"
    parties: list[str] | None = None
    signed_on: date | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    amount: Decimal | None = None
    status: str = "DRAFT"


@strawberry.input
class PaymentRecordInput:
    due_on: date
    amount: Decimal
    paid_amount: Decimal | None = None
    paid_on: date | None = None
    contract_id: strawberry.ID | None = None


@strawberry.input
class CustomerNeedInput:
    kind: str = strawberry.field(description="INTENTION, PREFERENCE or BEHAVIOUR")
    description: str
    recorded_at: datetime | None = strawberry.field(default=None, description=_TZ)


@strawberry.input
class ComplaintInput:
    received_at: datetime = strawberry.field(description=_TZ)
    summary: str
    channel: str | None = None
    severity: str = "MEDIUM"
    status: str = "OPEN"
    resolution: str | None = None


@strawberry.input
class SatisfactionSurveyInput:
    surveyed_on: date
    score: int
    comment: str | None = None


@strawberry.input(description="DRAFT → ACTIVE → EXPIRED or TERMINATED")
class UpdateContractInput:
    status: str | None = strawberry.UNSET


@strawberry.input(description="Resolving or closing needs a resolution")
class UpdateComplaintInput:
    status: str | None = strawberry.UNSET
    resolution: str | None = strawberry.UNSET


@strawberry.input(description="WON and LOST are final")
class UpdateOpportunityInput:
    stage: str | None = strawberry.UNSET
    expected_amount: Decimal | None = strawberry.UNSET
    expected_close: date | None = strawberry.UNSET
