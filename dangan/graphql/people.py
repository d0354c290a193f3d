"""GraphQL types for people and departments, and ``me``."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type(description="A member of staff of this tenant")
class Staff:
    id: int
    email: str
    display_name: str
    roles: list[str]

    @classmethod
    def from_row(cls, row: Any) -> Staff:
        return cls(
            id=row["identity_id"],
            email=row["email"],
            display_name=row["display_name"],
            roles=list(row["roles"]),
        )


@strawberry.type
class Department:
    id: int
    name: str
    parent_id: int | None

    @classmethod
    def from_row(cls, row: Any) -> Department:
        return cls(id=row["id"], name=row["name"], parent_id=row["parent_id"])
