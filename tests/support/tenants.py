"""Throwaway tenants: tests that need a tenant of their own remove it afterwards."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from dangan.tenants.names import quote_ident
from dangan.tenants.registry import find_tenant


async def drop_tenant(slug: str) -> None:
    """Remove a throwaway tenant whole: every schema its role owns (the live one, and any
    a restore retired or left), as their owner; registry row; role."""
    tenant = await find_tenant(slug)
    if tenant is None:
        return
    async with in_transaction() as conn:
        _, rows = await conn.execute_query(
            "SELECT nspname FROM pg_namespace WHERE nspowner = $1::regrole ORDER BY nspname",
            [tenant.role_name],
        )
        schemas = {tenant.schema_name, *(row["nspname"] for row in rows)}
        drops = " ".join(
            f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE;" for schema in sorted(schemas)
        )
        await conn.execute_script(
            f"SET LOCAL ROLE {quote_ident(tenant.role_name)}; {drops} RESET ROLE"
        )
        await conn.execute_query("DELETE FROM public.tenant WHERE id = $1", [tenant.id])
        await conn.execute_script(f"DROP ROLE {quote_ident(tenant.role_name)}")
