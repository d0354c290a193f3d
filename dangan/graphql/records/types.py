"""GraphQL types of a customer's records. Attributes are named like their columns, so a
row from :mod:`dangan.services.records` fills an instance directly; fields the policy
hid are null and listed in ``redacted`` (reported as ``extensions.redacted``). Amounts
are strings: masked, they are ranges such as ``100,000 – 1,000,000``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from dangan.audit.collector import note_rows
from dangan.authz.access import HIDDEN_FLAG
from dangan.graphql.people import Staff
from dangan.models.records import RECORD_TYPES, RecordType
from dangan.services.customers.inputs import api_name

AMOUNT = "Amount, or a range where you see it masked"
TEXT = "Masked as [withheld]"


@strawberry.enum(description="A kind of customer record (removeCustomerRecord)")
class CustomerRecordType(Enum):
    CONTACT_PERSON = "contact_person"
    COMMUNICATION = "communication"
    OPPORTUNITY = "opportunity"
    PURCHASE = "purchase"
    CONTRACT = "contract"
    PAYMENT_RECORD = "payment_record"
    CUSTOMER_NEED = "customer_need"
    COMPLAINT = "complaint"
    SATISFACTION_SURVEY = "satisfaction_survey"


@strawberry.type(description="联系人: a person to talk to at the customer")
class ContactPerson:
    id: strawberry.ID
    name: str | None = strawberry.field(description="张*明 where you see it masked")
    title: str | None
    phone: str | None
    email: str | None
    wechat: str | None
    is_primary: bool | None
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="沟通记录: a visit, call, meeting, e-mail or WeChat exchange")
class Communication:
    id: strawberry.ID
    channel: str | None = strawberry.field(description="VISIT, CALL, MEETING, EMAIL or WECHAT")
    occurred_at: datetime | None
    staff_id: int | None
    contact_person_id: strawberry.ID | None
    summary: str | None = strawberry.field(description=TEXT)
    next_step: str | None = strawberry.field(description=TEXT)
    next_step_due: date | None
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]

    @strawberry.field(description="The member of staff who was in touch")
    async def staff(self, info: Info) -> Staff | None:
        if self.staff_id is None:
            return None
        row = await info.context.members.load(self.staff_id)
        return Staff.from_row(row) if row is not None else None


@strawberry.type(description="商机: a sale in the making")
class Opportunity:
    id: strawberry.ID
    title: str | None
    stage: str | None = strawberry.field(description="LEAD, QUALIFIED, PROPOSAL, WON or LOST")
    expected_amount: str | None = strawberry.field(description=AMOUNT)
    expected_close: date | None
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="购买记录: one product line of an order")
class Purchase:
    id: strawberry.ID
    order_no: str | None
    product: str | None
    quantity: Decimal | None
    amount: str | None = strawberry.field(description=AMOUNT)
    cost: str | None = strawberry.field(description=AMOUNT + " (financial)")
    purchased_on: date | None
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="合同 / 合作协议: a contract or cooperation agreement")
class Contract:
    id: strawberry.ID
    number: str | None
    kind: str | None = strawberry.field(description="CONTRACT or COOPERATION")
    title: str | None
    parties: list[str] | None
    signed_on: date | None
    starts_on: date | None
    ends_on: date | None
    amount: str | None = strawberry.field(description=AMOUNT + " (financial)")
    status: str | None = strawberry.field(description="DRAFT, ACTIVE, EXPIRED or TERMINATED")
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="付款记录: what was due when, and what was paid")
class PaymentRecord:
    id: strawberry.ID
    contract_id: strawberry.ID | None
    due_on: date | None
    amount: str | None = strawberry.field(description=AMOUNT)
    paid_amount: str | None = strawberry.field(description=AMOUNT)
    paid_on: date | None
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="需求信息: an intention, preference or behaviour")
class CustomerNeed:
    id: strawberry.ID
    kind: str | None = strawberry.field(description="INTENTION, PREFERENCE or BEHAVIOUR")
    description: str | None = strawberry.field(description=TEXT)
    recorded_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="客户投诉")
class Complaint:
    id: strawberry.ID
    received_at: datetime | None
    channel: str | None
    severity: str | None = strawberry.field(description="LOW, MEDIUM or HIGH")
    status: str | None = strawberry.field(description="OPEN, RESOLVED or CLOSED")
    summary: str | None = strawberry.field(description=TEXT + " (notes)")
    resolution: str | None = strawberry.field(description=TEXT + " (notes)")
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


@strawberry.type(description="满意度调查: a score from 1 to 5")
class SatisfactionSurvey:
    id: strawberry.ID
    surveyed_on: date | None
    score: int | None
    comment: str | None = strawberry.field(description=TEXT + " (notes)")
    created_at: datetime | None
    created_by: int | None
    redacted: strawberry.Private[frozenset[str]]


RecordObject = TypeVar(
    "RecordObject",
    ContactPerson,
    Communication,
    Opportunity,
    Purchase,
    Contract,
    PaymentRecord,
    CustomerNeed,
    Complaint,
    SatisfactionSurvey,
)

TYPES: dict[str, type[Any]] = {
    "contact_person": ContactPerson,
    "communication": Communication,
    "opportunity": Opportunity,
    "purchase": Purchase,
    "contract": Contract,
    "payment_record": PaymentRecord,
    "customer_need": CustomerNeed,
    "complaint": Complaint,
    "satisfaction_survey": SatisfactionSurvey,
}


def _columns(record: RecordType) -> dict[str, str]:
    """GraphQL field name → the column it needs."""
    names = {api_name(column): column for column in record.fields} | {"id": "id"}
    return names | ({"staff": "staff_id"} if record.table == "communication" else {})


FIELD_COLUMNS = {table: _columns(record) for table, record in RECORD_TYPES.items()}
_ATTRIBUTES = {
    table: frozenset(name for name in vars(cls)["__annotations__"] if name != "redacted")
    for table, cls in TYPES.items()
}
_AS_TEXT = {
    table: frozenset(c for c, spec in record.fields.items() if spec.mask == "amount")
    for table, record in RECORD_TYPES.items()
}


def columns_for(table: str, names: set[str]) -> list[str]:
    """The columns to select for the GraphQL fields ``names`` of a record type."""
    wanted = FIELD_COLUMNS[table]
    return sorted({wanted[name] for name in names if name in wanted})


def from_rows(cls: type[RecordObject], table: str, rows: Sequence[Any]) -> list[RecordObject]:
    """Instances for rows of one query (the row shape is read once)."""
    if not rows:
        return []
    attributes, as_text = _ATTRIBUTES[table], _AS_TEXT[table]
    shape = list(rows[0].keys())  # asyncpg records: ``in`` would test the values
    keys = [key for key in shape if key in attributes]
    flags = [key for key in shape if key.startswith(HIDDEN_FLAG)]
    empty: dict[str, Any] = {**dict.fromkeys(attributes), "redacted": frozenset()}
    objects = []
    hidden_sets: list[frozenset[str]] = []  # of the rows with hidden values (audit)
    for row in rows:
        instance = object.__new__(cls)
        values = instance.__dict__
        values.update(empty)
        for key in keys:
            value = row[key]
            if isinstance(value, uuid.UUID) or (key in as_text and value is not None):
                value = str(value)
            values[key] = value
        hidden = [key[len(HIDDEN_FLAG) :] for key in flags if row[key]]
        if hidden:
            values["redacted"] = redacted = frozenset(hidden)
            hidden_sets.append(redacted)
        objects.append(instance)
    note_rows(cls.__name__, rows, hidden_sets)
    return objects
