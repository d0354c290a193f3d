"""A share of one customer with a partner app, made directly in the tenant and removed
afterwards (tests must not leave live shares in the world)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import TenantWorld


@asynccontextmanager
async def app_share(
    tenant: TenantWorld, customer_id: str, app: str, classes: Sequence[str]
) -> AsyncIterator[None]:
    async def make() -> object:
        conn = raw_connection()
        app_id = await conn.fetchval("SELECT id FROM partner_app WHERE name = $1", app)
        await conn.execute(
            "UPDATE customer SET consents_to_sharing = true WHERE id = $1::uuid", customer_id
        )
        request_id = await conn.fetchval(
            "INSERT INTO share_request (grantee_app_id, classes, level, purpose, valid_until,"
            " status, requested_by) VALUES ($1, $2, 'full', 'test share',"
            " now() + interval '1 day', 'approved', 0) RETURNING id",
            app_id,
            list(classes),
        )
        await conn.execute(
            "INSERT INTO share_request_customer (request_id, customer_id) VALUES ($1, $2::uuid)",
            request_id,
            customer_id,
        )
        return request_id

    request_id = await run_in_tenant(tenant.ref, make)

    async def remove() -> None:
        await raw_connection().execute("DELETE FROM share_request WHERE id = $1", request_id)

    try:
        yield
    finally:
        await run_in_tenant(tenant.ref, remove)
