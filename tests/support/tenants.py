"""Throwaway tenants: tests that need a tenant of their own remove it afterwards."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from dangan.tenants.names import quote_ident
from dangan.tenants.registry import find_tenant


async def drop_tenant(slug: str) -> None:
    """Remove a throwaway tenant whole: schema (as its owner), registry row, role."""
    tenant = await find_tenant(slug)
    if tenant is None:
        return
    async with in_transaction() as conn:
        await conn.execute_script(
            f"SET LOCAL ROLE {quote_ident(tenant.role_name)}; "
            f"DROP SCHEMA IF EXISTS {quote_ident(tenant.schema_name)} CASCADE; RESET ROLE"
        )
        await conn.execute_query("DELETE FROM public.tenant WHERE id = $1", [tenant.id])
        await conn.execute_script(f"DROP ROLE {quote_ident(tenant.role_name)}")
