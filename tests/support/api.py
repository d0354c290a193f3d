"""Calling the GraphQL API in tests, through the real ASGI app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    text: str

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        assert self.status == 200 and not self.errors, (self.status, self.body)
        return self.data


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self,
        tenant: str,
        credential: str | None,
        query: str,
        variables: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Response:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        payload: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            payload["variables"] = variables
        reply = await self.client.post(f"/t/{tenant}/graphql", json=payload, headers=headers)
        body = (
            reply.json()
            if reply.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        return Response(reply.status_code, body, reply.text)
