"""Partner-app API keys: shown once, stored as a SHA-256 hash, bound to one tenant.

A key is ``dgk_<key id>_<secret>`` with 256 bits of secret, so a fast hash is the right
tool (as for GitHub tokens): argon2 would protect nothing more and cost every request
tens of milliseconds. The key id finds the row; the hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from dangan.audit.actions import Recorder
from dangan.services.callers import APP_SCOPES
from dangan.services.errors import BadUserInput, Conflict, NotFound
from dangan.tenants.scope import TenantRef, tenant_part

PREFIX = "dgk_"


@dataclass(frozen=True)
class CreatedKey:
    app_id: int
    name: str
    key: str
    scopes: tuple[str, ...]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX):
        return None
    parts = key[len(PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def check_scopes(scopes: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(APP_SCOPES))
    if unknown or not scopes:
        raise BadUserInput(
            f"scopes must be among {', '.join(APP_SCOPES)} (got {', '.join(unknown) or 'none'})",
            field="scopes",
        )
    return tuple(sorted(set(scopes)))


async def create_app(
    tenant: TenantRef, name: str, scopes: list[str], *, record: Recorder | None = None
) -> CreatedKey:
    """A new partner app and its key (returned once, stored hashed); ``record`` (a
    command's audit log) is given ``app.create``, never the key, in the same transaction."""
    name = name.strip()
    if not name:
        raise BadUserInput("name must not be empty", field="name")
    checked = check_scopes(scopes)
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "INSERT INTO public.api_client (tenant_id, name, key_id, key_hash, scopes)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
            [tenant.id, name, key_id, _hash(key), list(checked)],
        )
        if not rows:
            raise Conflict(f"an app named {name!r} already exists in {tenant.slug}", field="name")
        await _mirror(conn, tenant, rows[0]["id"], name, checked, active=True, record=record)
    return CreatedKey(app_id=rows[0]["id"], name=name, key=key, scopes=checked)


async def _mirror(
    conn: BaseDBAsyncClient,
    tenant: TenantRef,
    app_id: int,
    name: str,
    scopes: tuple[str, ...],
    *,
    active: bool,
    record: Recorder | None = None,
    action: str = "app.create",
) -> None:
    """Keep the tenant's own record of the app (partner_app), which shares point at,
    and record ``action`` with it when asked to."""
    async with tenant_part(conn, tenant):
        await conn.execute_query(
            "INSERT INTO partner_app (id, name, scopes, active) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, scopes = EXCLUDED.scopes,"
            " active = EXCLUDED.active, updated_at = now()",
            [app_id, name, list(scopes), active],
        )
        if record is not None:
            await record(action, {"app": app_id, "appName": name, "scopes": list(scopes)})


async def revoke_app(tenant: TenantRef, name: str, *, record: Recorder | None = None) -> None:
    """Revoke an app's key at once; ``record`` is given ``app.revoke``."""
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "UPDATE public.api_client SET status = 'revoked', revoked_at = now()"
            " WHERE tenant_id = $1 AND name = $2 AND status = 'active' RETURNING id, scopes",
            [tenant.id, name],
        )
        if not rows:
            raise NotFound(f"no active app named {name!r} in {tenant.slug}", field="name")
        await _mirror(
            conn,
            tenant,
            rows[0]["id"],
            name,
            tuple(rows[0]["scopes"]),
            active=False,
            record=record,
            action="app.revoke",
        )


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(_hash(key), stored_hash)


async def rotate_app_key(tenant: TenantRef, name: str) -> CreatedKey:
    """Issue a new key for an existing app (the old key stops working at once)."""
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "UPDATE public.api_client SET key_id = $3, key_hash = $4, status = 'active',"
            " revoked_at = NULL WHERE tenant_id = $1 AND name = $2 RETURNING id, scopes",
            [tenant.id, name, key_id, _hash(key)],
        )
        if not rows:
            raise NotFound(f"no app named {name!r} in {tenant.slug}", field="name")
        await _mirror(conn, tenant, rows[0]["id"], name, tuple(rows[0]["scopes"]), active=True)
    return CreatedKey(app_id=rows[0]["id"], name=name, key=key, scopes=tuple(rows[0]["scopes"]))
