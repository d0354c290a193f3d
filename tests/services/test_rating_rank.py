"""The profit criterion is PostgreSQL's percent_rank of coalesce(profit, 0) over every
live customer — computed for a batch without sorting the whole tenant. Checked against
the window function itself on random profits, losses, ties and customers who never
bought anything."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from dangan.services.rating import rate_all_customers
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.tenants import drop_tenant

SLUG = "rating_rank"


@pytest.fixture
async def tenant(db: None) -> AsyncIterator[TenantRef]:
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Rating rank")
    yield ref
    await drop_tenant(SLUG)


async def test_profit_scores_equal_percent_rank_over_all_customers(tenant: TenantRef) -> None:
    rng = random.Random("percent-rank")

    async def seed() -> None:
        conn = raw_connection()
        for n in range(60):
            cid = await conn.fetchval(
                "INSERT INTO customer (kind, name, status) VALUES ('ENTERPRISE', $1, $2)"
                " RETURNING id",
                f"rank-{n}",
                "MERGED" if n % 17 == 0 else "ACTIVE",
            )
            if rng.random() < 0.3:
                continue  # never bought
            amount = Decimal(rng.choice((100, 200, 200, 500, 1000)))
            cost = amount + Decimal(50) if rng.random() < 0.15 else Decimal(0)  # a loss
            await conn.execute(
                "INSERT INTO purchase (customer_id, order_no, product, quantity, amount, cost,"
                " purchased_on) VALUES ($1, 'o', 'p', 1, $2, $3, current_date - 3)",
                cid,
                amount,
                cost,
            )

    await run_in_tenant(tenant, seed)
    assert await rate_all_customers(tenant, "manual", batch_size=7) > 0

    async def compare() -> list[tuple[object, object]]:
        rows = await raw_connection().fetch(
            "WITH profits AS (SELECT c.id, coalesce(sum(p.amount - p.cost), 0) AS profit,"
            " count(p.id) > 0 AS bought FROM customer c LEFT JOIN purchase p"
            " ON p.customer_id = c.id WHERE c.status <> 'MERGED' GROUP BY c.id),"
            " expected AS (SELECT id, bought,"
            " round((percent_rank() OVER (ORDER BY profit) * 100)::numeric, 2) AS score"
            " FROM profits)"
            " SELECT CASE WHEN e.bought THEN e.score ELSE 0 END AS expected,"
            " (r.criteria -> 'profit' ->> 'score')::numeric AS actual"
            " FROM expected e JOIN LATERAL (SELECT criteria FROM customer_rating"
            " WHERE customer_id = e.id ORDER BY id DESC LIMIT 1) r ON TRUE"
        )
        return [(row["expected"], row["actual"]) for row in rows]

    pairs = await run_in_tenant(tenant, compare)
    assert len(pairs) > 50
    assert all(expected == actual for expected, actual in pairs), pairs
