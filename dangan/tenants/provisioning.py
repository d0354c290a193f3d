"""Creating a tenant: registry row, PostgreSQL role, schema, every migration — atomically.

PostgreSQL DDL is transactional, role creation included, so a failure anywhere leaves
nothing behind: no half-made schema, no orphan role, no registry row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from dangan.services.errors import BadUserInput, Conflict
from dangan.tenants.migrations import apply_tenant_migration
from dangan.tenants.names import check_slug, quote_ident, role_for, schema_for
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef
from dangan.tenants.versions import TENANT_MIGRATIONS, Migration


async def _grant_set_only(conn: BaseDBAsyncClient, role: str) -> None:
    """Let the app role ``SET ROLE`` to the tenant role without inheriting its rights."""
    _, rows = await conn.execute_query("SELECT current_setting('server_version_num')::int AS v")
    if rows[0]["v"] >= 160000:
        await conn.execute_script(
            f"GRANT {quote_ident(role)} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE"
        )
    else:
        # PostgreSQL 15: the app role is NOINHERIT (or a superuser, which needs no grant
        # for SET ROLE but gets one anyway so the setup is the same everywhere).
        await conn.execute_script(f"GRANT {quote_ident(role)} TO CURRENT_USER")


async def create_tenant(slug: str, name: str) -> TenantRef:
    """A new tenant at the latest version, active; all of it or nothing."""
    async with in_transaction() as conn:
        tenant = await provision_tenant(conn, slug, name, TENANT_MIGRATIONS)
        return await activate_tenant(conn, tenant)


async def provision_tenant(
    conn: BaseDBAsyncClient, slug: str, name: str, migrations: Sequence[Migration]
) -> TenantRef:
    """Registry row (status ``provisioning``: the API does not serve it yet), role and
    schema, with ``migrations`` applied, inside the caller's transaction. A restore into
    a new tenant stops at its backup's version, loads, then migrates on."""
    check_slug(slug)
    name = name.strip()
    if not name:
        raise BadUserInput("name must not be empty", field="name")
    if await find_tenant(slug):
        raise Conflict(f"tenant {slug!r} already exists", field="slug")
    schema = schema_for(slug)
    _, meta = await conn.execute_query(
        "SELECT value FROM public.platform_meta WHERE key = 'deployment_id'"
    )
    role = role_for(slug, meta[0]["value"])
    try:
        rows = await conn.execute_query_dict(
            "INSERT INTO public.tenant (slug, name, schema_name, role_name, status)"
            " VALUES ($1, $2, $3, $4, 'provisioning') RETURNING id",
            [slug, name, schema, role],
        )
    except IntegrityError as exc:  # a concurrent create_tenant of this slug committed
        raise Conflict(f"tenant {slug!r} already exists", field="slug") from exc
    tenant = TenantRef(
        id=rows[0]["id"],
        slug=slug,
        name=name,
        schema_name=schema,
        role_name=role,
        status="provisioning",
        schema_version=0,
    )
    await conn.execute_script(f"CREATE ROLE {quote_ident(role)} NOLOGIN NOINHERIT")
    await _grant_set_only(conn, role)
    await conn.execute_script(
        f"CREATE SCHEMA {quote_ident(schema)} AUTHORIZATION {quote_ident(role)}"
    )
    for migration in migrations:
        await apply_tenant_migration(conn, tenant, migration)
    return replace(tenant, schema_version=migrations[-1].version if migrations else 0)


async def activate_tenant(conn: BaseDBAsyncClient, tenant: TenantRef) -> TenantRef:
    """Open a provisioned tenant to requests (in the caller's transaction)."""
    await conn.execute_query(
        "UPDATE public.tenant SET status = 'active' WHERE id = $1", [tenant.id]
    )
    return replace(tenant, status="active")
