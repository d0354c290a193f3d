"""A tenant with a realistic amount of archive data, built fast, and the raw COPY floor
that the backup benchmarks compare against.

:func:`fill_tenant` writes ``customers`` demo customers (realistic names, phones, ID
numbers and credit codes, ``COPY``) and then, with ``generate_series`` in SQL, what a
few years of work leaves around them: contact persons of enterprises, communications,
opportunities, purchase lines, contracts with their payment records, and the change
history of each customer's creation — about 18 rows per customer, in nine tables (20,000
customers: 369,000 rows, 59 MB of COPY text, in about 6 s), not one service call per row.

:func:`raw_copy` is the floor: ``COPY <table> TO STDOUT`` of every table of the tenant's
schema in one REPEATABLE READ, READ ONLY transaction on a plain asyncpg connection, each
chunk dropped (only its length counted).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from bench.harness import log
from dangan.demo.data import demo_customers
from dangan.services.people import create_user
from dangan.tenants.scope import TenantRef, scope_sql

_CUSTOMER_COLUMNS = (
    "id",
    "kind",
    "name",
    "phone",
    "email",
    "id_number",
    "uscc",
    "address",
    "region",
    "tier",
    "owner_id",
    "created_by",
    "updated_by",
)

# Everything but the customers, in SQL. random() is seeded first: the same tenant twice.
_RECORDS = """
SELECT setseed(0.42);
UPDATE customer SET
    industry = (ARRAY['MANUFACTURING','IT','FINANCE','RETAIL','LOGISTICS'])
               [1 + floor(random() * 5)::int],
    category = (ARRAY['DIRECT','CHANNEL','GOVERNMENT'])[1 + floor(random() * 3)::int],
    potential = 1 + floor(random() * 5)::int,
    competition_risk = (ARRAY['LOW','MEDIUM','HIGH'])[1 + floor(random() * 3)::int],
    credit_rating = (ARRAY['AAA','AA','A','BBB','BB'])[1 + floor(random() * 5)::int],
    payment_capacity = (1 + floor(random() * 400)) * 10000;
INSERT INTO contact_person (customer_id, name, title, phone, email, is_primary)
SELECT c.id,
       (ARRAY['王','李','张','刘','陈','杨','黄','赵'])[1 + floor(random() * 8)::int]
           || (ARRAY['伟','芳','娜','敏','静','磊','军','洋','勇'])[1 + floor(random() * 9)::int],
       (ARRAY['总经理','采购经理','财务总监','行政主管','IT 负责人'])[1 + floor(random() * 5)::int],
       '13' || lpad(floor(random() * 1e9)::bigint::text, 9, '0'),
       'contact' || n || '.' || substr(md5(c.id::text), 1, 8) || '@example.cn',
       n = 1
FROM customer c, generate_series(1, 2) n WHERE c.kind = 'ENTERPRISE';
INSERT INTO communication (customer_id, channel, occurred_at, staff_id, summary, next_step,
                           next_step_due)
SELECT c.id,
       (ARRAY['VISIT','CALL','MEETING','EMAIL','WECHAT'])[1 + floor(random() * 5)::int],
       now() - random() * interval '1000 days',
       c.owner_id,
       (ARRAY['介绍新一年的服务方案,客户对价格敏感,希望分期付款',
              '回访上次故障处理,客户表示满意,建议增加巡检频次',
              '讨论续约条款,客户希望延长付款周期至九十天',
              '客户询问增购门禁系统的交付时间与安装周期',
              '年度拜访,了解明年预算与采购计划,对方采购部门将重组'])[1 + floor(random() * 5)::int]
           || '。记录编号 ' || substr(md5(c.id::text || n), 1, 12),
       CASE WHEN random() < 0.5 THEN '下周电话跟进,发送报价单' END,
       CASE WHEN random() < 0.5 THEN current_date + (random() * 30)::int END
FROM customer c, generate_series(1, 4) n;
INSERT INTO opportunity (customer_id, title, stage, expected_amount, expected_close)
SELECT c.id, '扩容与续约 ' || substr(md5(c.id::text), 1, 6),
       (ARRAY['LEAD','QUALIFIED','PROPOSAL','WON','LOST'])[1 + floor(random() * 5)::int],
       (20 + floor(random() * 480)) * 1000, current_date + (random() * 180)::int
FROM customer c WHERE random() < 0.4;
INSERT INTO purchase (customer_id, order_no, product, quantity, amount, cost, purchased_on)
SELECT c.id, 'SO-' || upper(substr(md5(c.id::text), 1, 8)) || '-' || lpad(n::text, 2, '0'),
       (ARRAY['物业服务年费','智能门禁系统','企业云存储 1TB','年度维保服务','办公家具套装',
              '会议系统'])[1 + floor(random() * 6)::int],
       q, q * p, round((q * p * (0.3 + random() * 0.4))::numeric, 2),
       current_date - (random() * 1100)::int
FROM customer c, generate_series(1, 4) n,
     LATERAL (SELECT 1 + floor(random() * 5) AS q,
                     (ARRAY[36000, 18800, 4800, 12000, 9600, 56000])[1 + floor(random() * 6)::int]
                         AS p) x;
INSERT INTO contract (customer_id, number, title, parties, signed_on, starts_on, ends_on,
                      amount, status)
SELECT c.id, 'HT-' || upper(substr(md5(c.id::text), 1, 12)), '年度服务合同',
       ARRAY[c.name, '本公司'], s, s, s + 365, (50 + floor(random() * 850)) * 1000,
       CASE WHEN s + 365 > current_date THEN 'ACTIVE' ELSE 'EXPIRED' END
FROM customer c, LATERAL (SELECT current_date - (random() * 700)::int AS s) d
WHERE c.tier = 'KEY' OR random() < 0.2;
INSERT INTO payment_record (customer_id, contract_id, due_on, amount, paid_amount, paid_on)
SELECT k.customer_id, k.id, k.starts_on + 90 * n, round(k.amount / 4, 2),
       CASE WHEN k.starts_on + 90 * n < current_date THEN round(k.amount / 4, 2) ELSE 0 END,
       CASE WHEN k.starts_on + 90 * n < current_date THEN k.starts_on + 90 * n + 7 END
FROM contract k, generate_series(1, 4) n;
INSERT INTO customer_change (customer_id, action, actor_kind, actor_id, at, reason)
SELECT c.id, 'create', 'user', c.owner_id, c.created_at, '导入客户档案'
FROM customer c;
INSERT INTO customer_change_field (change_id, field, old_value, new_value)
SELECT h.id, f.field, NULL, f.value
FROM customer_change h JOIN customer c ON c.id = h.customer_id,
     LATERAL (VALUES ('name', c.name), ('phone', c.phone), ('kind', c.kind),
                     ('region', c.region), ('tier', c.tier), ('address', c.address))
         AS f(field, value);
"""

TABLES = (  # the tables a backup reads, in its order (dangan.backups.snapshot)
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " ORDER BY c.relname"
)


@dataclass(frozen=True)
class Filled:
    rows: int  # rows in every table of the tenant's schema
    copy_bytes: int  # what COPY TO STDOUT of all of them gives


async def fill_tenant(conn: asyncpg.Connection, tenant: TenantRef, customers: int) -> Filled:
    """``customers`` customers and their records into the (empty) ``tenant``."""
    began = time.monotonic()
    owner = await create_user(
        tenant, f"owner@{tenant.slug.replace('_', '-')}.bench", ["sales"], display_name="Owner"
    )
    people = demo_customers(tenant.slug, customers)
    records = [
        (
            uuid.uuid4(),
            p.kind,
            p.name,
            p.phone,
            p.email,
            p.id_number,
            p.uscc,
            p.address,
            p.region,
            p.tier,
            owner.identity_id,
            owner.identity_id,
            owner.identity_id,
        )
        for p in people
    ]
    async with conn.transaction():
        await conn.execute(scope_sql(tenant))
        await conn.copy_records_to_table("customer", records=records, columns=_CUSTOMER_COLUMNS)
        await conn.execute(_RECORDS)
    async with conn.transaction():
        await conn.execute(scope_sql(tenant))
        await conn.execute("ANALYZE")
    copied = await raw_copy(conn, tenant)
    rows = await _rows(conn, tenant)
    log(
        f"{tenant.slug}: {rows:,} rows, {copied / 1e6:.1f} MB as COPY text,"
        f" filled in {time.monotonic() - began:.1f}s"
    )
    return Filled(rows, copied)


async def _rows(conn: asyncpg.Connection, tenant: TenantRef) -> int:
    async with conn.transaction():
        await conn.execute(scope_sql(tenant))
        total = 0
        for row in await conn.fetch(TABLES):
            total += await conn.fetchval(f'SELECT count(*) FROM "{row["relname"]}"')
    return total


async def raw_copy(conn: asyncpg.Connection, tenant: TenantRef) -> int:
    """The floor: every table of ``tenant`` by ``COPY … TO STDOUT`` in one REPEATABLE
    READ, READ ONLY transaction, into a sink that only counts; returns the bytes."""
    copied = 0

    async def discard(chunk: bytes) -> None:
        nonlocal copied
        copied += len(chunk)

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(scope_sql(tenant))
        for row in await conn.fetch(TABLES):
            await conn.copy_from_table(row["relname"], output=discard)
    return copied
