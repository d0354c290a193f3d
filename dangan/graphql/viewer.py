"""``me`` (who am I, in which tenant) and ``login`` (e-mail + password → token)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from dangan.services.authentication import login as do_login


@strawberry.enum
class CallerKind(Enum):
    USER = "user"
    PARTNER_APP = "app"


@strawberry.type
class TenantInfo:
    slug: str
    name: str


@strawberry.type(description="The caller of this request")
class Viewer:
    kind: CallerKind
    id: int
    name: str
    email: str | None
    roles: list[str]
    scopes: list[str]
    department_id: int | None
    tenant: TenantInfo


@strawberry.type
class LoginPayload:
    token: str
    expires_at: datetime


def me(info: Info) -> Viewer:
    caller = info.context.require_caller()
    tenant = info.context.tenant
    return Viewer(
        kind=CallerKind(caller.kind),
        id=caller.id,
        name=caller.name,
        email=caller.email,
        roles=sorted(caller.roles),
        scopes=sorted(caller.scopes),
        department_id=caller.department_id,
        tenant=TenantInfo(slug=tenant.slug, name=tenant.name),
    )


async def login(info: Info, email: str, password: str) -> LoginPayload:
    """Sign in to this tenant; the token works for this tenant only."""
    ctx = info.context
    signed_in = await do_login(
        ctx.tenant,
        email,
        password,
        client_address=ctx.client_address,
        throttle=ctx.login_throttle,
        secret=ctx.settings.secret_key,
        ttl_seconds=ctx.settings.token_ttl_seconds,
    )
    ctx.signed_in = signed_in.caller
    issued = signed_in.token
    return LoginPayload(token=issued.token, expires_at=issued.expires_at)
