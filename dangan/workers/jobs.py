"""Job functions. Each is safe to run twice and reports its progress."""

from __future__ import annotations

from typing import Any

from dangan.audit.actions import ActionLog
from dangan.services.errors import NotFound
from dangan.services.sharing import expire_shares
from dangan.tenants.migrations import migrate_tenant
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers.progress import report


async def tenant_census(ctx: dict[str, Any], slug: str) -> dict[str, Any]:
    """Count a tenant's customers by kind and tier (read-only, so naturally idempotent)."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")

    async def count() -> dict[str, Any]:
        rows = await raw_connection().fetch(
            "SELECT kind, tier, count(*) AS n FROM customer GROUP BY kind, tier ORDER BY kind, tier"
        )
        return {
            "tenant": slug,
            "customers": sum(row["n"] for row in rows),
            "by_kind_and_tier": {f"{row['kind']}/{row['tier']}": row["n"] for row in rows},
        }

    return await run_in_tenant(tenant, count)


async def migrate_all_tenants(ctx: dict[str, Any]) -> dict[str, int]:
    """Bring every tenant schema to the latest version; resumable, progress per tenant."""
    job_id = ctx.get("job_id", "migrate-all")
    tenants = await list_tenants()
    applied = 0
    for done, tenant in enumerate(tenants, start=1):
        applied += await migrate_tenant(tenant)
        await report(
            ctx["redis"],
            ctx["settings"].redis_namespace,
            job_id,
            done=done,
            total=len(tenants),
            stage=tenant.slug,
        )
    return {"tenants": len(tenants), "versions_applied": applied}


async def nightly_census(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: census of every tenant, so the numbers are ready each morning."""
    tenants = await list_tenants()
    totals: dict[str, int] = {}
    for done, tenant in enumerate(tenants, start=1):
        totals[tenant.slug] = (await tenant_census(ctx, tenant.slug))["customers"]
        await report(
            ctx["redis"],
            ctx["settings"].redis_namespace,
            ctx.get("job_id", "nightly-census"),
            done=done,
            total=len(tenants),
            stage=tenant.slug,
        )
    return totals


async def expire_share_grants(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: record shares past their end date as expired, in every tenant (with a
    ``share.expire`` audit event). (They stop counting at that instant regardless: the
    share_grant view checks the date.)"""
    log = ActionLog(ctx["settings"].secret_key, "job")
    expired: dict[str, int] = {}
    for tenant in await list_tenants():
        count = await run_in_tenant(tenant, lambda: expire_shares(log))
        if count:
            expired[tenant.slug] = count
    return expired
