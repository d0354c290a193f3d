"""Demo profiles: what the archive holds about each demo customer beyond its identity —
classification, contact persons, communications, opportunities, purchases, contracts,
payment history — so that ratings, histories and exports have something real to show.

Deterministic (one random generator per tenant) and idempotent: every record id derives
from the tenant and position, and rows are inserted with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dangan.services.identifiers import make_mobile
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

_NAMESPACE = uuid.UUID("0b6f2a8e-3c41-4f0e-9a7d-2d1c5e6f7a80")

INDUSTRIES = {
    "MANUFACTURING": "制造业",
    "IT": "信息技术",
    "FINANCE": "金融业",
    "RETAIL": "批发零售",
    "REAL_ESTATE": "房地产",
    "LOGISTICS": "交通物流",
    "HEALTHCARE": "医疗健康",
    "EDUCATION": "教育",
}
CATEGORIES = {"DIRECT": "直销客户", "CHANNEL": "渠道客户", "GOVERNMENT": "政企客户"}
BUILDINGS = {f"B{n:02d}": f"{n}号楼" for n in range(1, 7)}
PRODUCTS = (
    ("物业服务年费", Decimal("36000"), Decimal("0.62")),
    ("智能门禁系统", Decimal("18800"), Decimal("0.55")),
    ("企业云存储 1TB", Decimal("4800"), Decimal("0.35")),
    ("年度维保服务", Decimal("12000"), Decimal("0.40")),
    ("办公家具套装", Decimal("9600"), Decimal("0.70")),
    ("会议系统", Decimal("56000"), Decimal("0.58")),
)
CHANNELS = ("VISIT", "CALL", "MEETING", "EMAIL", "WECHAT")
SUMMARIES = (
    "介绍新一年的服务方案,客户对价格敏感",
    "回访上次故障处理,客户表示满意",
    "讨论续约条款,客户希望延长付款周期",
    "客户询问增购门禁系统的交付时间",
    "年度拜访,了解明年预算与采购计划",
)
TITLES = ("总经理", "采购经理", "财务总监", "行政主管", "IT 负责人")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂"


@dataclass
class _Rows:
    """Rows to insert, per table."""

    customers: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    communications: list[tuple[Any, ...]] = field(default_factory=list)
    opportunities: list[tuple[Any, ...]] = field(default_factory=list)
    purchases: list[tuple[Any, ...]] = field(default_factory=list)
    contracts: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)


def _id(slug: str, kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, ":".join([slug, kind, *map(str, parts)]))


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))


def _when(rng: random.Random, today: date, max_days: int) -> date:
    return today - timedelta(days=rng.randrange(1, max_days))


def _profile(rows: _Rows, rng: random.Random, slug: str, customer: Any, today: date) -> None:
    """Everything the archive knows about one customer."""
    cid, enterprise, owner = customer["id"], customer["kind"] == "ENTERPRISE", customer["owner_id"]
    capacity = Decimal(rng.choice((50, 200, 800, 3000, 12000))) * 1000
    rows.customers.append(
        (
            cid,
            rng.choice(list(INDUSTRIES)) if enterprise else None,
            rng.choice(list(CATEGORIES)),
            rng.choice(list(BUILDINGS)) if rng.random() < 0.3 else None,
            rng.choice(("SMALL", "MEDIUM", "LARGE")) if enterprise else None,
            capacity * 5 if enterprise else None,
            _person(rng) if enterprise else None,
            rng.randint(1, 5),
            rng.choice(("LOW", "MEDIUM", "HIGH")),
            rng.choice(("AAA", "AA", "A", "BBB", "BB")),
            capacity,
        )
    )
    for n in range(rng.randint(1, 3) if enterprise else 0):
        rows.contacts.append(
            (
                _id(slug, "contact", cid, n),
                cid,
                _person(rng),
                rng.choice(TITLES),
                make_mobile(rng),
                n == 0,
            )
        )
    for n in range(rng.randint(0, 4)):
        day = _when(rng, today, 720)
        rows.communications.append(
            (
                _id(slug, "communication", cid, n),
                cid,
                rng.choice(CHANNELS),
                datetime.combine(day, time(10, 0), tzinfo=UTC),
                owner,
                rng.choice(SUMMARIES),
                "下周电话跟进" if rng.random() < 0.5 else None,
            )
        )
    if rng.random() < 0.3:
        rows.opportunities.append(
            (
                _id(slug, "opportunity", cid),
                cid,
                "扩容与续约",
                rng.choice(("LEAD", "QUALIFIED", "PROPOSAL")),
                Decimal(rng.randrange(20, 500)) * 1000,
            )
        )
    if rng.random() < 0.3:
        return  # a customer who never bought anything
    orders = rng.randint(1, 6)
    for n in range(orders):
        product, price, cost_share = rng.choice(PRODUCTS)
        quantity = Decimal(rng.randint(1, 5))
        amount = price * quantity
        rows.purchases.append(
            (
                _id(slug, "purchase", cid, n),
                cid,
                f"SO-{slug.upper()}-{cid.hex[:6]}-{n + 1:02d}",
                product,
                quantity,
                amount,
                (amount * cost_share).quantize(Decimal("0.01")),
                _when(rng, today, 1100),
            )
        )
    if customer["tier"] == "KEY" or rng.random() < 0.15:
        contract_id = _id(slug, "contract", cid)
        start = _when(rng, today, 700)
        amount = Decimal(rng.randrange(50, 900)) * 1000
        rows.contracts.append(
            (
                contract_id,
                cid,
                f"HT-{slug.upper()}-{cid.hex[:8]}",
                "年度服务合同",
                [customer["name"], "本公司"],
                start,
                start,
                start + timedelta(days=365),
                amount,
                "ACTIVE" if start + timedelta(days=365) > today else "EXPIRED",
            )
        )
        for n in range(4):
            due = start + timedelta(days=90 * (n + 1))
            share = (amount / 4).quantize(Decimal("0.01"))
            late = due < today and rng.random() < 0.15
            paid = Decimal(0) if late or due >= today else share
            rows.payments.append(
                (
                    _id(slug, "payment", cid, n),
                    cid,
                    contract_id,
                    due,
                    share,
                    paid,
                    due + timedelta(days=rng.randint(0, 20)) if paid else None,
                )
            )


_INSERTS = {
    "contacts": "INSERT INTO contact_person (id, customer_id, name, title, phone, is_primary)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    "communications": "INSERT INTO communication (id, customer_id, channel, occurred_at,"
    " staff_id, summary, next_step) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (id) DO NOTHING",
    "opportunities": "INSERT INTO opportunity (id, customer_id, title, stage, expected_amount)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    "purchases": "INSERT INTO purchase (id, customer_id, order_no, product, quantity, amount,"
    " cost, purchased_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    "contracts": "INSERT INTO contract (id, customer_id, number, title, parties, signed_on,"
    " starts_on, ends_on, amount, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (id) DO NOTHING",
    "payments": "INSERT INTO payment_record (id, customer_id, contract_id, due_on, amount,"
    " paid_amount, paid_on) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
}


async def _dictionaries() -> None:
    rows: list[tuple[str, str, str, int]] = []
    for dimension, values in (
        ("industry", INDUSTRIES),
        ("category", CATEGORIES),
        ("building", BUILDINGS),
    ):
        rows += [(dimension, code, label, n) for n, (code, label) in enumerate(values.items())]
    await raw_connection().executemany(
        "INSERT INTO classification_value (dimension, code, label, position)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (dimension, code) DO NOTHING",
        rows,
    )


async def seed_profiles(tenant: TenantRef, customer_ids: Sequence[uuid.UUID]) -> int:
    """Give the listed customers a profile, unless they have one already (their industry,
    category… are set once). Returns how many customers got one."""

    async def seed() -> int:
        conn = raw_connection()
        await _dictionaries()
        customers = await conn.fetch(
            "SELECT id, kind, name, tier, owner_id FROM customer"
            " WHERE id = ANY($1::uuid[]) AND category IS NULL ORDER BY id",
            list(customer_ids),
        )
        rng = random.Random(f"dangan-demo-profiles:{tenant.slug}")
        rows = _Rows()
        today = date.today()
        for customer in customers:
            _profile(rows, rng, tenant.slug, customer, today)
        await conn.executemany(
            "UPDATE customer SET industry = $2, category = $3, building = $4, scale = $5,"
            " registered_capital = $6, legal_representative = $7, potential = $8,"
            " competition_risk = $9, credit_rating = $10, payment_capacity = $11"
            " WHERE id = $1",
            rows.customers,
        )
        for name, sql in _INSERTS.items():
            batch = getattr(rows, name)
            if batch:
                await conn.executemany(sql, batch)
        return len(customers)

    return await run_in_tenant(tenant, seed)
