"""Inputs of the customer queries and mutations: conditions, order, create and update."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum

import strawberry

from dangan.graphql.customers.enums import (
    CompetitionRisk,
    CustomerKind,
    CustomerScale,
    CustomerTier,
    SortDirection,
)


@strawberry.enum(description="How a condition compares the field with the value(s)")
class ConditionOp(Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    CONTAINS = "contains"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IS_NULL = "is_null"


@strawberry.input(
    description="One condition on a customer field, named as in the Customer type "
    "(e.g. region, tier, ownerId, createdAt, phone). Values are given as text. Fields "
    "you may not see are unknown to you; masked fields allow only exact matches, and "
    "only where your policy says so."
)
class CustomerCondition:
    field: str
    op: ConditionOp = ConditionOp.EQ
    value: str | None = None
    values: list[str] | None = None


@strawberry.input(
    description="Sort by name, region, tier, kind, status, category, industry, city, "
    "createdAt or updatedAt"
)
class CustomerOrder:
    field: str = "createdAt"
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class CreateCustomerInput:
    kind: CustomerKind
    name: str
    phone: str | None = None
    email: str | None = None
    id_number: str | None = None
    uscc: str | None = None
    address: str | None = None
    region: str | None = None
    tier: CustomerTier = CustomerTier.ORDINARY
    owner_id: int | None = None
    department_id: int | None = None
    wechat: str | None = None
    birthday: date | None = None
    gender: str | None = None
    credit_rating: str | None = None
    payment_capacity: Decimal | None = None
    annual_revenue: Decimal | None = None
    remarks: str | None = None
    tags: list[str] | None = None
    consents_to_sharing: bool = False
    category: str | None = None
    industry: str | None = None
    building: str | None = None
    city: str | None = None
    legal_representative: str | None = None
    scale: CustomerScale | None = None
    registered_capital: Decimal | None = None
    potential: int | None = None
    competition_risk: CompetitionRisk | None = None


@strawberry.input(description="Only the fields given are changed; null clears a field")
class UpdateCustomerInput:
    kind: CustomerKind | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    id_number: str | None = strawberry.UNSET
    uscc: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    tier: CustomerTier | None = strawberry.UNSET
    owner_id: int | None = strawberry.UNSET
    department_id: int | None = strawberry.UNSET
    wechat: str | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    gender: str | None = strawberry.UNSET
    credit_rating: str | None = strawberry.UNSET
    payment_capacity: Decimal | None = strawberry.UNSET
    annual_revenue: Decimal | None = strawberry.UNSET
    remarks: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    consents_to_sharing: bool | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    industry: str | None = strawberry.UNSET
    building: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    legal_representative: str | None = strawberry.UNSET
    scale: CustomerScale | None = strawberry.UNSET
    registered_capital: Decimal | None = strawberry.UNSET
    potential: int | None = strawberry.UNSET
    competition_risk: CompetitionRisk | None = strawberry.UNSET
