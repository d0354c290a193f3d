"""Turning a bearer credential into a :class:`Caller` of one tenant, and signing in.

Unknown, malformed, expired or revoked credentials are UNAUTHENTICATED (HTTP 401); a
valid credential that does not belong to the tenant asked for is FORBIDDEN (HTTP 403).
Platform tables are read here, before the request enters the tenant transaction (the
tenant role cannot read them). A credential suspended by an access alarm
(``public.credential_suspension``, joined in the same query) is FORBIDDEN until an
administrator of the tenant reinstates it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import connections

from dangan.services.api_keys import key_matches, split_key
from dangan.services.callers import Caller
from dangan.services.errors import Forbidden, Unauthenticated
from dangan.services.identifiers import InvalidIdentifier, normalize_account_email
from dangan.services.passwords import verify_password
from dangan.services.ratelimit import LoginThrottle
from dangan.services.tokens import IssuedToken, issue_token, read_token
from dangan.tenants.scope import TenantRef


@dataclass(frozen=True)
class SignedIn:
    token: IssuedToken
    caller: Caller  # who signed in, as their requests will be made


def bearer_credential(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("send 'Authorization: Bearer <token or API key>'")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token or API key>'")
    return credential.strip()


async def authenticate(tenant: TenantRef, authorization: str | None, *, secret: str) -> Caller:
    credential = bearer_credential(authorization)
    key_parts = split_key(credential)
    if key_parts is not None:
        return await _authenticate_app(tenant, credential, key_parts[0])
    claims = read_token(credential, secret=secret)
    if claims.tenant_slug != tenant.slug:
        raise Forbidden("this token was issued for another tenant")
    return await user_caller(tenant, claims.identity_id)


def _check_not_suspended(tenant: TenantRef, alert_id: int | None, what: str) -> None:
    if alert_id is not None:
        raise Forbidden(f"{what} to {tenant.slug} is suspended pending review of alert {alert_id}")


async def _authenticate_app(tenant: TenantRef, key: str, key_id: str) -> Caller:
    rows = await connections.get("default").execute_query_dict(
        "SELECT a.id, a.tenant_id, a.name, a.key_hash, a.scopes, a.status,"
        " s.alert_id AS suspended_by FROM public.api_client a"
        " LEFT JOIN public.credential_suspension s ON s.tenant_id = a.tenant_id"
        " AND s.actor_kind = 'app' AND s.actor_id = a.id"
        " WHERE a.key_id = $1",
        [key_id],
    )
    if not rows or not key_matches(key, rows[0]["key_hash"]) or rows[0]["status"] != "active":
        raise Unauthenticated("the API key is not valid or has been revoked")
    app = rows[0]
    if app["tenant_id"] != tenant.id:
        raise Forbidden("this API key belongs to another tenant")
    _check_not_suspended(tenant, app["suspended_by"], "this API key's access")
    return Caller(
        kind="app",
        id=app["id"],
        name=app["name"],
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        scopes=frozenset(app["scopes"]),
    )


async def user_caller(tenant: TenantRef, identity_id: int) -> Caller:
    rows = await connections.get("default").execute_query_dict(
        "SELECT i.email, i.display_name, i.status, m.roles, m.department_id,"
        " s.alert_id AS suspended_by FROM public.identity i"
        " LEFT JOIN public.membership m ON m.identity_id = i.id AND m.tenant_id = $2"
        " LEFT JOIN public.credential_suspension s ON s.tenant_id = $2"
        " AND s.actor_kind = 'user' AND s.actor_id = i.id"
        " WHERE i.id = $1",
        [identity_id, tenant.id],
    )
    if not rows or rows[0]["status"] != "active":
        raise Unauthenticated("this account does not exist or is disabled")
    row = rows[0]
    if row["roles"] is None:
        raise Forbidden(f"you are not a member of tenant {tenant.slug}")
    _check_not_suspended(tenant, row["suspended_by"], "your access")
    return Caller(
        kind="user",
        id=identity_id,
        name=row["display_name"],
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        email=row["email"],
        roles=frozenset(row["roles"]),
        department_id=row["department_id"],
    )


async def login(
    tenant: TenantRef,
    email: str,
    password: str,
    *,
    client_address: str,
    throttle: LoginThrottle,
    secret: str,
    ttl_seconds: int,
) -> SignedIn:
    """Check e-mail and password for ``tenant`` and issue a token; also says who signed
    in (the audit event of the sign-in names them as its actor).

    Every failure says the same thing (no account enumeration) and counts against the
    e-mail and the client address; past the limit the answer is RATE_LIMITED.
    """
    try:
        email = normalize_account_email(email)
    except InvalidIdentifier:
        email = email.strip().lower()
    account_key = f"{tenant.slug}:{email}"
    await throttle.by_account.check(account_key)
    await throttle.by_address.check(client_address)
    rows = await connections.get("default").execute_query_dict(
        "SELECT i.id, i.password_hash, i.status, m.id AS membership,"
        " s.alert_id AS suspended_by FROM public.identity i"
        " LEFT JOIN public.membership m ON m.identity_id = i.id AND m.tenant_id = $2"
        " LEFT JOIN public.credential_suspension s ON s.tenant_id = $2"
        " AND s.actor_kind = 'user' AND s.actor_id = i.id"
        " WHERE i.email = $1",
        [email, tenant.id],
    )
    row = rows[0] if rows else None
    password_ok = verify_password(row["password_hash"] if row else None, password)
    if not (row and password_ok and row["status"] == "active" and row["membership"]):
        await throttle.by_account.record_failure(account_key)
        await throttle.by_address.record_failure(client_address)
        raise Unauthenticated("wrong e-mail or password")
    await throttle.by_account.reset(account_key)
    _check_not_suspended(tenant, row["suspended_by"], "your access")
    issued = issue_token(row["id"], tenant.slug, secret=secret, ttl_seconds=ttl_seconds)
    return SignedIn(issued, await user_caller(tenant, row["id"]))


async def member_identity_id(tenant: TenantRef, email: str) -> int:
    """The identity id of a member of ``tenant`` (for issuing tokens from the CLI)."""
    try:
        email = normalize_account_email(email)
    except InvalidIdentifier as exc:
        raise Unauthenticated(f"email: {exc.reason}") from exc
    rows = await connections.get("default").execute_query_dict(
        "SELECT i.id FROM public.identity i JOIN public.membership m"
        " ON m.identity_id = i.id AND m.tenant_id = $2 WHERE i.email = $1 AND i.status = 'active'",
        [email, tenant.id],
    )
    if not rows:
        raise Forbidden(f"{email} is not an active member of {tenant.slug}")
    return int(rows[0]["id"])
