"""GraphQL types of the customer archive."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.graphql.people import Department, Staff


@strawberry.enum(description="个人客户 / 企业客户")
class CustomerKind(Enum):
    INDIVIDUAL = "INDIVIDUAL"
    ENTERPRISE = "ENTERPRISE"


@strawberry.enum(description="重点客户 / 普通客户 / 潜在客户")
class CustomerTier(Enum):
    KEY = "KEY"
    ORDINARY = "ORDINARY"
    POTENTIAL = "POTENTIAL"


@strawberry.enum
class CustomerOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


# GraphQL field name → column it needs (owner and department need their id column).
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
    "department": "department_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "version": "version",
}


@strawberry.type(description="客户档案: one customer's archive record")
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
    owner_id: strawberry.Private[int | None]
    department_id: strawberry.Private[int | None]

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

    @classmethod
    def from_row(cls, row: Any) -> Customer:
        get = row.get
        kind, tier = get("kind"), get("tier")
        return cls(
            id=strawberry.ID(str(row["id"])),
            kind=CustomerKind(kind) if kind else None,
            name=get("name"),
            phone=get("phone"),
            email=get("email"),
            id_number=get("id_number"),
            uscc=get("uscc"),
            address=get("address"),
            region=get("region"),
            tier=CustomerTier(tier) if tier else None,
            created_at=get("created_at"),
            updated_at=get("updated_at"),
            version=get("version"),
            owner_id=get("owner_id"),
            department_id=get("department_id"),
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


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


@strawberry.input
class CustomerFilter:
    kind: CustomerKind | None = None
    tier: CustomerTier | None = None
    region: str | None = None
    owner_id: int | None = None
    department_id: int | None = None
    search: str | None = strawberry.field(default=None, description="Part of the name")
    created_after: datetime | None = None
    created_before: datetime | None = None


@strawberry.input
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.CREATED_AT
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
