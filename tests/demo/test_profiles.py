"""Demo profiles: every demo customer gets a believable, valid archive once, and
seeding again changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.demo.profiles import seed_profiles
from dangan.demo.seed import _seed_customers
from dangan.services.people import create_user
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.tenants import drop_tenant

SLUG = "demo_profiles"
COUNT = 60


@pytest.fixture
async def tenant(db: None) -> AsyncIterator[TenantRef]:
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Demo profiles")
    yield ref
    await drop_tenant(SLUG)


async def _counts(tenant: TenantRef) -> dict[str, Any]:
    async def count() -> dict[str, Any]:
        conn = raw_connection()
        tables = ("contact_person", "communication", "opportunity", "purchase", "contract")
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
        counts["overdue"] = await conn.fetchval(
            "SELECT count(*) FROM payment_record WHERE due_on < current_date"
            " AND paid_amount < amount"
        )
        counts["profiled"] = await conn.fetchval(
            "SELECT count(*) FROM customer WHERE category IS NOT NULL AND potential IS NOT NULL"
        )
        counts["dangling"] = await conn.fetchval(
            "SELECT count(*) FROM customer c WHERE industry IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM classification_value v"
            "  WHERE v.dimension = 'industry' AND v.code = c.industry)"
        )
        return counts

    return await run_in_tenant(tenant, count)


async def test_profiles_are_complete_valid_and_seeded_once(tenant: TenantRef) -> None:
    owner = await create_user(tenant, "owner@demo-profiles.test", ["sales"], display_name="o")
    await _seed_customers(tenant, [owner], COUNT)

    async def ids() -> list[Any]:
        return [r["id"] for r in await raw_connection().fetch("SELECT id FROM customer")]

    customer_ids = await run_in_tenant(tenant, ids)
    assert await seed_profiles(tenant, customer_ids) == COUNT
    first = await _counts(tenant)
    assert first["profiled"] == COUNT and first["dangling"] == 0
    assert first["purchase"] > COUNT and first["communication"] > COUNT / 2
    assert first["contact_person"] > 0 and first["contract"] > 0

    assert await seed_profiles(tenant, customer_ids) == 0
    assert await _counts(tenant) == first
