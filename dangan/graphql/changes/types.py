"""GraphQL types of the change record: who changed what, when, why, and its decision."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from dangan.services.customers.inputs import api_name
from dangan.services.history import field_values


@strawberry.enum(
    description="APPLIED at once; PENDING approval, then APPROVED, REJECTED or WITHDRAWN"
)
class ChangeStatus(Enum):
    APPLIED = "APPLIED"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


@strawberry.type(description="Who made or decided a change: a member of staff or an app")
class ChangeActor:
    kind: str = strawberry.field(description="user or app")
    id: int | None
    name: str | None = strawberry.field(description="Display name of the person or app")


@strawberry.type(description="One field of a change, as your policy lets you see it")
class FieldChange:
    field: str = strawberry.field(description="As the API names it, e.g. idNumber")
    old_value: str | None
    new_value: str | None


@strawberry.type(
    description="One change to a customer or one of its records. Fields you may not see "
    "are left out (not even their names are shown)."
)
class CustomerChange:
    id: strawberry.ID
    customer_id: strawberry.ID
    action: str = strawberry.field(description="create, update, status, …")
    record_type: str = strawberry.field(description="customer, or the record's table")
    record_id: strawberry.ID | None
    status: ChangeStatus
    reason: str | None
    actor: ChangeActor
    at: datetime
    base_version: int | None
    decided_by: ChangeActor | None
    decided_at: datetime | None
    decision_comment: str | None
    fields: list[FieldChange]

    @classmethod
    def from_row(cls, row: Any) -> CustomerChange:
        decided_by = None
        if row["decided_by"] is not None:
            decided_by = ChangeActor(kind="user", id=row["decided_by"], name=row["decider_name"])
        return cls(
            id=strawberry.ID(str(row["id"])),
            customer_id=strawberry.ID(str(row["customer_id"])),
            action=row["action"],
            record_type=row["record_type"],
            record_id=strawberry.ID(str(row["record_id"])) if row["record_id"] else None,
            status=ChangeStatus(row["status"]),
            reason=row["reason"],
            actor=ChangeActor(kind=row["actor_kind"], id=row["actor_id"], name=row["actor_name"]),
            at=row["at"],
            base_version=row["base_version"],
            decided_by=decided_by,
            decided_at=row["decided_at"],
            decision_comment=row["decision_comment"],
            fields=[
                FieldChange(field=api_name(column), old_value=old, new_value=new)
                for column, old, new in field_values(row)
            ],
        )


@strawberry.type(description="A page of changes, newest first")
class CustomerChangeConnection:
    nodes: list[CustomerChange]
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="Give as after for the next page")
