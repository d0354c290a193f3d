"""Hand-made purchase histories for the rating tests, inserted directly in SQL.

``HISTORIES`` are five customers whose scores are worked out by hand below (weights
40/25/20/15, floors 80/60/40), plus a merged one that must be neither rated nor ranked.
Dates are relative to today, so the expected values never drift.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import TenantWorld

D = Decimal


@dataclass
class History:
    key: str
    created_days_ago: int = 0
    potential: int | None = None
    risk: str | None = None
    status: str = "ACTIVE"
    # (order_no, amount, cost, days ago)
    purchases: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    # (stage, expected amount)
    opportunities: list[tuple[str, str]] = field(default_factory=list)
    # expected: score, grade, criterion scores (profit, loyalty, potential, competition)
    score: Decimal | None = None
    grade: str | None = None
    criteria: tuple[Decimal, ...] = ()


HISTORIES = [
    # profit 600 + 500 = 1,100 (rank 4 of 5 → 75); tenure from the old order 1,461 days
    # = 4.0 years → 80, 2 orders → 16.67, loyalty 48.33; potential 4 → 80 + 500k open
    # (the lost one doesn't count) → +10 = 90; LOW → 100.
    # 0.4×75 + 0.25×48.33 + 0.2×90 + 0.15×100 = 75.0825 → 75.08, B.
    History(
        "mid",
        created_days_ago=100,
        potential=4,
        risk="LOW",
        purchases=[("A1", "1000", "400", 10), ("A2", "500", None, 20), ("A0", "100", "0", 1461)],
        opportunities=[("PROPOSAL", "500000"), ("LOST", "1000000")],
        score=D("75.08"),
        grade="B",
        criteria=(D("75"), D("48.33"), D("90"), D("100")),
    ),
    # 15 orders (capped at 12), 10 years (capped at 5), potential 5 + 2M open (capped).
    History(
        "top",
        created_days_ago=3653,
        potential=5,
        risk="MEDIUM",
        purchases=[(f"T{n}", "1000", "500", 5 + n) for n in range(15)],
        opportunities=[("LEAD", "2000000")],
        score=D("94.00"),
        grade="A",
        criteria=(D("100"), D("100"), D("100"), D("60")),
    ),
    # Nothing known: no purchases → 0, unknown potential and risk → 50 each.
    History("new", score=D("17.50"), grade="D", criteria=(D("0"), D("0"), D("50"), D("50"))),
    # A loss (cost above amount): lowest rank; loyalty (5 days → 0.27, 1 order → 8.33)/2.
    History(
        "loss",
        potential=1,
        risk="HIGH",
        purchases=[("L1", "100", "150", 5)],
        score=D("8.08"),
        grade="D",
        criteria=(D("0"), D("4.30"), D("20"), D("20")),
    ),
    # Bought only 400 days ago: no profit in the window, ranked with "new" at 0.
    History(
        "idle",
        created_days_ago=400,
        potential=3,
        risk="LOW",
        purchases=[("I1", "1000", "0", 400)],
        score=D("29.74"),
        grade="D",
        criteria=(D("0"), D("10.95"), D("60"), D("100")),
    ),
    # Merged into another: would top the ranking if it counted.
    History("merged", status="MERGED", purchases=[("M1", "9000000", "0", 3)]),
]


async def insert_history(
    history: History, *, owner_id: int | None, department_id: int | None, name_prefix: str
) -> uuid.UUID:
    """Insert the customer, its purchases and opportunities (inside a tenant transaction)."""
    conn = raw_connection()
    customer_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO customer (kind, name, owner_id, department_id, potential,"
        " competition_risk, status, created_at)"
        " VALUES ('ENTERPRISE', $1, $2, $3, $4, $5, $6, now() - make_interval(days => $7))"
        " RETURNING id",
        f"{name_prefix}{history.key}",
        owner_id,
        department_id,
        history.potential,
        history.risk,
        history.status,
        history.created_days_ago,
    )
    await add_purchases(customer_id, history.purchases)
    for stage, amount in history.opportunities:
        await conn.execute(
            "INSERT INTO opportunity (customer_id, title, stage, expected_amount)"
            " VALUES ($1, 'deal', $2, $3::numeric)",
            customer_id,
            stage,
            amount,
        )
    return customer_id


async def add_purchases(
    customer_id: uuid.UUID, purchases: list[tuple[str, str, str | None, int]]
) -> None:
    for order_no, amount, cost, days in purchases:
        await raw_connection().execute(
            "INSERT INTO purchase (customer_id, order_no, product, quantity, amount, cost,"
            " purchased_on) VALUES ($1, $2, 'widget', 1, $3::numeric, $4::numeric,"
            " current_date - $5::int)",
            customer_id,
            order_no,
            amount,
            cost,
            days,
        )


async def history_rows(customer_id: uuid.UUID) -> list[Any]:
    return await raw_connection().fetch(
        "SELECT score, grade, trigger, criteria FROM customer_rating WHERE customer_id = $1"
        " ORDER BY id",
        customer_id,
    )


async def reset_criteria() -> None:
    conn = raw_connection()
    await conn.execute(
        "UPDATE rating_criterion SET updated_by = NULL, weight = CASE code"
        " WHEN 'profit' THEN 40 WHEN 'loyalty' THEN 25 WHEN 'potential' THEN 20 ELSE 15 END"
    )
    await conn.execute(
        "UPDATE rating_grade_floor SET floor = CASE grade WHEN 'A' THEN 80 WHEN 'B' THEN 60"
        " ELSE 40 END"
    )


WORLD_PREFIX = "评级样本"  # customers the rating tests add to a world tenant


async def seed_world_histories(tenant: TenantWorld, owner: str = "sales") -> dict[str, uuid.UUID]:
    """The hand-made histories in a world tenant, owned by ``owner`` and not yet rated."""
    person = tenant.people[owner]

    async def fill() -> dict[str, uuid.UUID]:
        return {
            h.key: await insert_history(
                h,
                owner_id=person.identity_id,
                department_id=person.department_id,
                name_prefix=f"{WORLD_PREFIX}{owner}-",
            )
            for h in HISTORIES
        }

    return await run_in_tenant(tenant.ref, fill)


async def remove_world_histories(tenant: TenantWorld) -> None:
    """Remove them (purchases, ratings and shares go with them) and reset the criteria."""

    async def remove() -> None:
        conn = raw_connection()
        await conn.execute(
            "DELETE FROM share_request r USING share_request_customer s, customer c"
            " WHERE s.request_id = r.id AND c.id = s.customer_id AND c.name LIKE $1",
            f"{WORLD_PREFIX}%",
        )
        await conn.execute("DELETE FROM customer WHERE name LIKE $1", f"{WORLD_PREFIX}%")
        await reset_criteria()

    await run_in_tenant(tenant.ref, remove)
