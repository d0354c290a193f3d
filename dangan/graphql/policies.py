"""Policy versions through the API (administrators): propose, activate, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from dangan.services import policies
from dangan.services.errors import BadUserInput


@strawberry.type
class PolicyFile:
    name: str
    content: str


@strawberry.type(description="A version of the tenant's access policy; every one is kept")
class PolicyVersion:
    id: int
    status: str
    comment: str
    files: list[PolicyFile]
    report: JSON = strawberry.field(
        description="Impact against the version active when it was proposed: per role, "
        "customers seen and values full / masked / hidden per class, [before, after]"
    )
    proposed_by: int
    proposed_at: datetime
    activated_by: int | None
    activated_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> PolicyVersion:
        files = orjson.loads(row["files"])
        return cls(
            id=row["id"],
            status=row["status"],
            comment=row["comment"],
            files=[PolicyFile(name=n, content=t) for n, t in sorted(files.items())],
            report=orjson.loads(row["report"]),
            proposed_by=row["proposed_by"],
            proposed_at=row["proposed_at"],
            activated_by=row["activated_by"],
            activated_at=row["activated_at"],
        )


@strawberry.input
class PolicyFileInput:
    name: str = strawberry.field(description="customers.polar, …, or tests/<name>.yaml")
    content: str


async def propose_policy(info: Info, files: list[PolicyFileInput], comment: str) -> PolicyVersion:
    """Validate, test and measure a new policy version (it is not active yet)."""
    named = {f.name: f.content for f in files}
    if len(named) != len(files):
        raise BadUserInput("file names must be unique", field="files")
    row = await policies.propose_policy(info.context.require_caller(), named, comment)
    return PolicyVersion.from_row(row)


async def activate_policy(info: Info, version: int) -> PolicyVersion:
    """Make a version active for every API process at once (rollback: activate an older one)."""
    row = await policies.activate_policy(info.context.require_caller(), version)
    return PolicyVersion.from_row(row)


async def policy_versions(info: Info) -> list[PolicyVersion]:
    return [
        PolicyVersion.from_row(r)
        for r in await policies.policy_versions(info.context.require_caller())
    ]
