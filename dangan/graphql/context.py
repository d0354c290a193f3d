"""The typed request context every resolver receives as ``info.context``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from strawberry.dataloader import DataLoader

from dangan.services import classification, customers, history, sharing
from dangan.services.callers import Caller
from dangan.services.errors import Unauthenticated
from dangan.services.ratelimit import LoginThrottle
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef


def _loader(fetch: Any) -> DataLoader[Any, Any]:
    async def load(keys: list[Any]) -> list[Any]:
        found = await fetch(keys)
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


def _loader_by_uuid(fetch: Any) -> DataLoader[Any, Any]:
    async def load(keys: list[Any]) -> list[Any]:
        ids = [uuid.UUID(str(key)) for key in keys]
        found = await fetch(ids)
        return [found.get(key) for key in ids]

    return DataLoader(load_fn=load)


@dataclass
class Context:
    tenant: TenantRef
    caller: Caller | None
    settings: Settings
    request_id: str
    client_address: str
    login_throttle: LoginThrottle
    objects: ObjectStore  # attachments, imports and exports in S3
    jobs: ArqRedis  # the arq queue, for long work (imports, exports, ratings)
    members: DataLoader[int, Any] = field(default_factory=lambda: _loader(customers.members_by_id))
    departments: DataLoader[int, Any] = field(
        default_factory=lambda: _loader(customers.departments_by_id)
    )

    share_details: DataLoader[Any, Any] = field(
        default_factory=lambda: _loader_by_uuid(sharing.share_details)
    )
    # Labels of classification codes, and pending changes per customer (one query a page).
    classification_labels: DataLoader[Any, Any] = field(
        default_factory=lambda: _loader(classification.labels_of)
    )
    pending_changes: DataLoader[Any, Any] = field(init=False)
    # Response paths of values the policy hid (returned as extensions.redacted).
    redacted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def pending(ids: list[str]) -> dict[str, Any]:
            return await history.pending_for_customers(self.require_caller(), ids)

        self.pending_changes = _loader(pending)

    def require_caller(self) -> Caller:
        if self.caller is None:
            raise Unauthenticated("sign in first")
        return self.caller
