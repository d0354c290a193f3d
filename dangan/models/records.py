"""Records about a customer (contacts, communications, purchases, contracts, …): which
sensitivity class each belongs to, and how each of its columns is classed and masked.

A caller sees a record when they see its customer and the record's class is shown to
them (in full or masked) on that customer; each column is then shown in full, masked or
not at all by its own class, exactly like a customer field. Policies speak of classes
only here: a single-field rule (``"phone"``) names a customer column, not a record's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dangan.models.archive import FieldSpec


@dataclass(frozen=True)
class RecordType:
    """One table of records hanging off ``customer`` (column ``customer_id``)."""

    name: str  # as the API names it (singular, camelCase)
    table: str
    sensitivity: str  # the class that decides whether the record is seen at all
    fields: dict[str, FieldSpec]
    order_by: str  # newest first by this column
    # Columns the API never returns (bookkeeping); always readable where the record is.
    plain: frozenset[str] = field(default_factory=lambda: frozenset({"id", "customer_id"}))

    def spec(self, column: str) -> FieldSpec | None:
        return self.fields.get(column)


def _same(sensitivity: str, *columns: str) -> dict[str, FieldSpec]:
    return {column: FieldSpec(sensitivity) for column in columns}


CONTACT_PERSON = RecordType(
    name="contactPerson",
    table="contact_person",
    sensitivity="contact",
    order_by="created_at",
    fields={
        "name": FieldSpec("contact", "person_name"),
        "phone": FieldSpec("contact", "mobile"),
        "email": FieldSpec("contact", "email"),
        "wechat": FieldSpec("contact", "wechat"),
        **_same("basic", "title", "is_primary", "created_at", "created_by"),
    },
)
COMMUNICATION = RecordType(
    name="communication",
    table="communication",
    sensitivity="business",
    order_by="occurred_at",
    fields={
        **_same("business", "channel", "occurred_at", "staff_id", "contact_person_id"),
        "summary": FieldSpec("business", "text"),
        "next_step": FieldSpec("business", "text"),
        **_same("business", "next_step_due", "created_at", "created_by"),
    },
)
OPPORTUNITY = RecordType(
    name="opportunity",
    table="opportunity",
    sensitivity="business",
    order_by="created_at",
    fields={
        **_same("business", "title", "stage", "expected_close", "created_at", "created_by"),
        "expected_amount": FieldSpec("business", "amount"),
    },
)
PURCHASE = RecordType(
    name="purchase",
    table="purchase",
    sensitivity="business",
    order_by="purchased_on",
    fields={
        **_same("business", "order_no", "product", "quantity", "purchased_on"),
        "amount": FieldSpec("business", "amount"),
        # What the sale cost the tenant: its margin is financial information.
        "cost": FieldSpec("financial", "amount"),
        **_same("business", "created_at", "created_by"),
    },
)
CONTRACT = RecordType(
    name="contract",
    table="contract",
    sensitivity="business",
    order_by="created_at",
    fields={
        **_same("business", "number", "kind", "title", "parties", "signed_on", "starts_on"),
        **_same("business", "ends_on", "status", "created_at", "created_by"),
        "amount": FieldSpec("financial", "amount"),
    },
)
PAYMENT_RECORD = RecordType(
    name="paymentRecord",
    table="payment_record",
    sensitivity="financial",
    order_by="due_on",
    fields={
        **_same("financial", "contract_id", "due_on", "paid_on", "created_at", "created_by"),
        "amount": FieldSpec("financial", "amount"),
        "paid_amount": FieldSpec("financial", "amount"),
    },
)
CUSTOMER_NEED = RecordType(
    name="need",
    table="customer_need",
    sensitivity="business",
    order_by="recorded_at",
    fields={
        **_same("business", "kind", "recorded_at", "created_by"),
        "description": FieldSpec("business", "text"),
    },
)
COMPLAINT = RecordType(
    name="complaint",
    table="complaint",
    sensitivity="business",
    order_by="received_at",
    fields={
        **_same("business", "received_at", "channel", "severity", "status"),
        "summary": FieldSpec("notes", "text"),
        "resolution": FieldSpec("notes", "text"),
        **_same("business", "created_at", "created_by"),
    },
)
SATISFACTION_SURVEY = RecordType(
    name="satisfactionSurvey",
    table="satisfaction_survey",
    sensitivity="business",
    order_by="surveyed_on",
    fields={
        **_same("business", "surveyed_on", "score", "created_at", "created_by"),
        "comment": FieldSpec("notes", "text"),
    },
)

RECORD_TYPES: dict[str, RecordType] = {
    record.table: record
    for record in (
        CONTACT_PERSON,
        COMMUNICATION,
        OPPORTUNITY,
        PURCHASE,
        CONTRACT,
        PAYMENT_RECORD,
        CUSTOMER_NEED,
        COMPLAINT,
        SATISFACTION_SURVEY,
    )
}
