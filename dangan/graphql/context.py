"""The typed request context every resolver receives as ``info.context``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from arq.connections import ArqRedis
from strawberry.dataloader import DataLoader

from dangan.alarms.alerts import deliveries_of
from dangan.graphql.rating import rating_loader
from dangan.services import attachments, classification, customers, history, sharing
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
    # Customer records, one loader per (record type, columns, first), made on first use
    # (dangan.graphql.records.nested).
    record_loaders: dict[tuple[object, ...], DataLoader[Any, Any]] = field(default_factory=dict)
    ratings: DataLoader[Any, Any] = field(default_factory=rating_loader)
    # Labels of classification codes (one query a page).
    classification_labels: DataLoader[Any, Any] = field(
        default_factory=lambda: _loader(classification.labels_of)
    )
    # Response paths of values the policy hid (returned as extensions.redacted).
    redacted: list[str] = field(default_factory=list)
    # Work on platform tables that must follow the request's commit (the tenant role
    # can't write them): run by the endpoint once the transaction has committed.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Who a successful ``login`` signed in: the actor of that request's audit event.
    signed_in: Caller | None = None

    @cached_property
    def attachments(self) -> DataLoader[Any, Any]:
        """Customer id → the attachments the caller may see (one query per page)."""
        caller = self.require_caller()
        return _loader_by_uuid(partial(attachments.attachments_for_customers, caller))

    @cached_property
    def pending_changes(self) -> DataLoader[Any, Any]:
        """Customer id → its pending changes, as the caller may see them."""
        caller = self.require_caller()
        return _loader(partial(history.pending_for_customers, caller))

    @cached_property
    def alert_deliveries(self) -> DataLoader[Any, Any]:
        """Alert id → its webhook attempts (one query per page of alerts)."""
        return _loader(partial(deliveries_of, self.require_caller()))

    def require_caller(self) -> Caller:
        if self.caller is None:
            raise Unauthenticated("sign in first")
        return self.caller
