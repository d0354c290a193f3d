"""GraphQL types of the customer archive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.audit.collector import note_rows
from dangan.authz.access import HIDDEN_FLAG
from dangan.graphql.attachments import Attachment, customer_attachments
from dangan.graphql.changes.types import CustomerChange
from dangan.graphql.customers.enums import (
    CompetitionRisk,
    CustomerKind,
    CustomerScale,
    CustomerStatus,
    CustomerTier,
)
from dangan.graphql.people import Department, Staff
from dangan.graphql.rating import CustomerRating, customer_rating
from dangan.graphql.records import nested as records

FIELD_COLUMNS: dict[str, str] = {
    "id": "id",
    "kind": "kind",
    "name": "name",
    "phone": "phone",
    "email": "email",
    "idNumber": "id_number",
    "uscc": "uscc",
    "address": "address",
    "region": "region",
    "tier": "tier",
    "owner": "owner_id",
    "ownerId": "owner_id",
    "department": "department_id",
    "departmentId": "department_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "version": "version",
    "wechat": "wechat",
    "birthday": "birthday",
    "gender": "gender",
    "creditRating": "credit_rating",
    "paymentCapacity": "payment_capacity",
    "annualRevenue": "annual_revenue",
    "remarks": "remarks",
    "tags": "tags",
    "consentsToSharing": "consents_to_sharing",
    "category": "category",
    "categoryLabel": "category",
    "industry": "industry",
    "industryLabel": "industry",
    "building": "building",
    "buildingLabel": "building",
    "city": "city",
    "legalRepresentative": "legal_representative",
    "scale": "scale",
    "registeredCapital": "registered_capital",
    "potential": "potential",
    "competitionRisk": "competition_risk",
    "status": "status",
    "statusChangedAt": "status_changed_at",
    "ratingGrade": "rating_grade",
    "ratingScore": "rating_score",
    "ratedAt": "rated_at",
}
# Column → Python attribute of Customer, where they differ (for extensions.redacted).
_ATTRIBUTES = {"owner_id": "owner", "department_id": "department"}
_PLAIN = (
    "name",
    "phone",
    "email",
    "id_number",
    "uscc",
    "address",
    "region",
    "created_at",
    "updated_at",
    "version",
    "wechat",
    "gender",
    "credit_rating",
    "remarks",
    "tags",
    "consents_to_sharing",
    "category",
    "industry",
    "building",
    "city",
    "legal_representative",
    "potential",
    "status_changed_at",
    "rating_grade",
    "rated_at",
)
# Labels of dictionary values: hidden (and reported) wherever their code is.
_LABELS = {"category": "category_label", "industry": "industry_label", "building": "building_label"}


@strawberry.type(
    description="客户档案: one customer's archive record. Fields you may not see are null "
    "and listed in extensions.redacted; masked values look like 138****5678."
)
class Customer:
    id: strawberry.ID
    kind: CustomerKind | None
    name: str | None
    phone: str | None
    email: str | None
    id_number: str | None
    uscc: str | None
    address: str | None
    region: str | None
    tier: CustomerTier | None
    created_at: datetime | None
    updated_at: datetime | None
    version: int | None
    wechat: str | None
    birthday: str | None = strawberry.field(description="1990-03-07, or 1990-**-** masked")
    gender: str | None
    credit_rating: str | None
    payment_capacity: str | None = strawberry.field(description="Amount, or a range masked")
    annual_revenue: str | None = strawberry.field(description="Amount, or a range masked")
    remarks: str | None
    tags: list[str] | None
    consents_to_sharing: bool | None
    category: str | None = strawberry.field(description="Code of classificationValues(CATEGORY)")
    industry: str | None = strawberry.field(description="Code of classificationValues(INDUSTRY)")
    building: str | None = strawberry.field(description="Code of classificationValues(BUILDING)")
    city: str | None = strawberry.field(description="Prefecture-level city of the region")
    legal_representative: str | None
    scale: CustomerScale | None
    registered_capital: str | None = strawberry.field(description="Amount in yuan")
    potential: int | None = strawberry.field(description="发展潜力, 1 (low) to 5 (high)")
    competition_risk: CompetitionRisk | None
    status: CustomerStatus | None
    status_changed_at: datetime | None
    rating_grade: str | None = strawberry.field(description="A to D, set by the rating job")
    rating_score: str | None = strawberry.field(description="0 to 100, set by the rating job")
    rated_at: datetime | None
    owner_id: strawberry.Private[int | None]
    department_id: strawberry.Private[int | None]
    redacted: strawberry.Private[frozenset[str]]
    contact_persons = strawberry.field(resolver=records.contact_persons)
    communications = strawberry.field(resolver=records.communications)
    opportunities = strawberry.field(resolver=records.opportunities)
    purchases = strawberry.field(resolver=records.purchases)
    contracts = strawberry.field(resolver=records.contracts)
    payment_records = strawberry.field(resolver=records.payment_records)
    needs = strawberry.field(resolver=records.needs)
    complaints = strawberry.field(resolver=records.complaints)
    satisfaction_surveys = strawberry.field(resolver=records.satisfaction_surveys)
    overdue_amount = strawberry.field(resolver=records.overdue_amount)

    attachments: list[Attachment] = strawberry.field(resolver=customer_attachments)
    rating: CustomerRating | None = strawberry.field(resolver=customer_rating)

    @strawberry.field(description="The member of staff responsible for this customer")
    async def owner(self, info: Info) -> Staff | None:
        if self.owner_id is None:
            return None
        row = await info.context.members.load(self.owner_id)
        return Staff.from_row(row) if row is not None else None

    @strawberry.field
    async def department(self, info: Info) -> Department | None:
        if self.department_id is None:
            return None
        row = await info.context.departments.load(self.department_id)
        return Department.from_row(row) if row is not None else None

    @strawberry.field(description="Label of the category (null where category is)")
    async def category_label(self, info: Info) -> str | None:
        return await _label(info, "category", self.category)

    @strawberry.field(description="Label of the industry (null where industry is)")
    async def industry_label(self, info: Info) -> str | None:
        return await _label(info, "industry", self.industry)

    @strawberry.field(description="Label of the building (null where building is)")
    async def building_label(self, info: Info) -> str | None:
        return await _label(info, "building", self.building)

    @strawberry.field(
        description="Changes of this customer waiting for approval (values as you may see them)"
    )
    async def pending_changes(self, info: Info) -> list[CustomerChange]:
        rows = await info.context.pending_changes.load(self.id)
        return [CustomerChange.from_row(row) for row in rows or []]

    @classmethod
    def from_row(cls, row: Any) -> Customer:
        return cls.from_rows([row])[0]

    @classmethod
    def from_rows(cls, rows: Sequence[Any]) -> list[Customer]:
        """Objects for rows of one query. The row shape is read once, and instances are
        filled directly (a page holds up to 1,000 of them; see bench/)."""
        if not rows:
            return []
        keys = set(rows[0].keys())
        present = [name for name in _PLAIN if name in keys]
        as_text = [name for name in _AS_TEXT if name in keys]
        flags = [
            (key, _ATTRIBUTES.get(key[len(HIDDEN_FLAG) :], key[len(HIDDEN_FLAG) :]))
            for key in keys
            if key.startswith(HIDDEN_FLAG)
        ]
        has_kind, has_tier = "kind" in keys, "tier" in keys
        has_owner, has_department = "owner_id" in keys, "department_id" in keys
        enums = [(name, table) for name, table in _ENUMS.items() if name in keys]
        make = object.__new__
        customers = []
        hidden_sets: list[frozenset[str]] = []  # of the rows with hidden values (audit)
        for row in rows:
            customer = make(cls)
            values = customer.__dict__
            values.update(_NOTHING)
            values["id"] = str(row["id"])
            for name in present:
                values[name] = row[name]
            for name in as_text:
                value = row[name]
                values[name] = None if value is None else str(value)
            if has_kind and row["kind"] is not None:
                values["kind"] = _KINDS[row["kind"]]
            if has_tier and row["tier"] is not None:
                values["tier"] = _TIERS[row["tier"]]
            for name, table in enums:
                value = row[name]
                values[name] = None if value is None else table[value]
            if has_owner:
                values["owner_id"] = row["owner_id"]
            if has_department:
                values["department_id"] = row["department_id"]
            if flags:
                hidden = [name for key, name in flags if row[key]]
                hidden += [_LABELS[name] for name in hidden if name in _LABELS]
                if hidden:
                    values["redacted"] = redacted = frozenset(hidden)
                    hidden_sets.append(redacted)
            customers.append(customer)
        note_rows("Customer", rows, hidden_sets, _ATTRIBUTES)
        return customers


_KINDS = {kind.value: kind for kind in CustomerKind}
_TIERS = {tier.value: tier for tier in CustomerTier}
_ENUMS: dict[str, dict[str, Enum]] = {
    "scale": {scale.value: scale for scale in CustomerScale},
    "competition_risk": {risk.value: risk for risk in CompetitionRisk},
    "status": {status.value: status for status in CustomerStatus},
}
_AS_TEXT = ("birthday", "payment_capacity", "annual_revenue", "registered_capital", "rating_score")
_NOTHING: dict[str, Any] = {
    **dict.fromkeys((*_PLAIN, *_AS_TEXT, *_ENUMS, "kind", "tier", "owner_id", "department_id")),
    "redacted": frozenset(),
}


async def _label(info: Info, dimension: str, code: str | None) -> str | None:
    if code is None:
        return None
    label: str | None = await info.context.classification_labels.load((dimension, code))
    return label


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Any, items: Sequence[Any]) -> PageInfo:
        """From a service's page (``has_next``, ``has_previous``, ``cursor(item)``) and
        the items it holds, in order."""
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursor(items[0]) if items else None,
            end_cursor=page.cursor(items[-1]) if items else None,
        )


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A page of customers (Relay connection)")
class CustomerConnection:
    edges: list[CustomerEdge]
    nodes: list[Customer]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        description="How many customers match the filter (null unless asked for)"
    )
