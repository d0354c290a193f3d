"""GraphQL types of sharing and borrowing (共享 / 借阅)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.inputs import CustomerCondition


@strawberry.enum
class GranteeKind(Enum):
    USER = "user"
    DEPARTMENT = "department"
    PARTNER_APP = "app"


@strawberry.enum
class ShareLevel(Enum):
    FULL = "full"
    MASKED = "masked"


@strawberry.enum
class ShareStatus(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


@strawberry.type
class Grantee:
    kind: GranteeKind
    id: int


@strawberry.type(description="One state change of a share request: who, when and why")
class ShareEvent:
    event: str
    actor_kind: str
    actor_id: int | None
    reason: str | None
    at: datetime


@strawberry.type(
    description="A request to share customers; it counts once approved, until validUntil"
)
class ShareRequest:
    id: strawberry.ID
    status: ShareStatus
    grantee: Grantee
    classes: list[str]
    level: ShareLevel
    purpose: str
    valid_until: datetime
    requested_by: int
    requested_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    comment: str | None

    @strawberry.field
    async def customer_count(self, info: Info) -> int:
        return int((await info.context.share_details.load(self.id))["customers"])

    @strawberry.field
    async def events(self, info: Info) -> list[ShareEvent]:
        rows = (await info.context.share_details.load(self.id))["events"]
        return [
            ShareEvent(
                event=r["event"],
                actor_kind=r["actor_kind"],
                actor_id=r["actor_id"],
                reason=r["reason"],
                at=r["at"],
            )
            for r in rows
        ]

    @classmethod
    def from_row(cls, row: Any) -> ShareRequest:
        if row["grantee_user_id"] is not None:
            grantee = Grantee(kind=GranteeKind.USER, id=row["grantee_user_id"])
        elif row["grantee_department_id"] is not None:
            grantee = Grantee(kind=GranteeKind.DEPARTMENT, id=row["grantee_department_id"])
        else:
            grantee = Grantee(kind=GranteeKind.PARTNER_APP, id=row["grantee_app_id"])
        return cls(
            id=strawberry.ID(str(row["id"])),
            status=ShareStatus(row["status"]),
            grantee=grantee,
            classes=list(row["classes"]),
            level=ShareLevel(row["level"]),
            purpose=row["purpose"],
            valid_until=row["valid_until"],
            requested_by=row["requested_by"],
            requested_at=row["requested_at"],
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            comment=row["decision_comment"],
        )


@strawberry.input
class GranteeInput:
    kind: GranteeKind
    id: int


@strawberry.input(description="Customers by id, or by conditions resolved now (a snapshot)")
class RequestShareInput:
    grantee: GranteeInput
    classes: list[str]
    purpose: str
    until: datetime
    level: ShareLevel = ShareLevel.MASKED
    customer_ids: list[strawberry.ID] | None = None
    where: list[CustomerCondition] | None = None
