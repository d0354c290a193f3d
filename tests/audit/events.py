"""Calling the API and reading back the audit event a request wrote."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.api import Api, Response

USER_AGENT = "audit-tests/1.0"
JSON_COLUMNS = ("variables", "fields", "changes")


async def post(
    api: Api,
    tenant: str,
    credential: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> tuple[Response, str]:
    """The reply and its request id (``X-Request-Id``)."""
    headers = {"User-Agent": USER_AGENT}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    reply = await api.client.post(f"/t/{tenant}/graphql", json=payload, headers=headers)
    return Response(reply.status_code, reply.json(), reply.text), reply.headers["X-Request-Id"]


async def events_of(tenant: TenantRef, request_id: str) -> list[dict[str, Any]]:
    """The events written for ``request_id`` (jsonb columns decoded)."""

    async def read() -> list[Any]:
        return await raw_connection().fetch(
            "SELECT * FROM audit_event WHERE request_id = $1", request_id
        )

    events = []
    for row in await run_in_tenant(tenant, read):
        event = dict(row)
        for column in JSON_COLUMNS:
            event[column] = orjson.loads(event[column])
        ids = event["customers"]
        event["customers"] = [uuid.UUID(bytes=ids[i : i + 16]) for i in range(0, len(ids), 16)]
        events.append(event)
    return events


async def event_of(tenant: TenantRef, request_id: str) -> dict[str, Any]:
    """The one event of ``request_id``."""
    events = await events_of(tenant, request_id)
    assert len(events) == 1, events
    return events[0]


async def head_of(tenant: TenantRef) -> tuple[int, str]:
    async def read() -> Any:
        return await raw_connection().fetchrow("SELECT last_seq, last_hash FROM audit_head")

    row = await run_in_tenant(tenant, read)
    return row["last_seq"], row["last_hash"]


def as_text(event: dict[str, Any]) -> str:
    """Every value of the event as one text, to look for what must not be there."""
    return orjson.dumps(event, default=str).decode()
