"""Who is calling: a person (JWT) or a partner app (API key), always within one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ROLES = ("admin", "manager", "sales", "auditor")
APP_SCOPES = ("customers:read", "customers:write")


@dataclass(frozen=True)
class Caller:
    kind: Literal["user", "app"]
    id: int
    name: str
    tenant_id: int
    tenant_slug: str
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    department_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor_key(self) -> str:
        """Stable text key for rate limits, logs and audit (``user:3``, ``app:7``)."""
        return f"{self.kind}:{self.id}"
