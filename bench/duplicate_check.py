"""The duplicate check of a new customer in a tenant of 100,000, against an indexed lookup.

Setup: a tenant of its own (``dedup``) with an administrator and 100,000 realistic demo
customers (Chinese names, valid mobile numbers, ID numbers and credit codes), bulk
loaded with ``COPY`` and analysed. The plan of the very statement ``find_duplicates``
sends is printed and must use the trigram index ``customer_name_trgm`` (else the
benchmark fails: at this size a sequential scan is what it would otherwise silently
measure).

API side: :func:`find_duplicates` for a new customer — an existing individual's name
(common Chinese names have many look-alikes), a new mobile number and a new ID number —
in a tenant transaction as the administrator, as ``createCustomer`` runs it.

Floor: a plain asyncpg connection, one transaction scoped like a request, and the raw
indexed exact lookup of the same mobile number (``SELECT id FROM customer WHERE phone =
$1``). Both print p50 in milliseconds, and the ratio.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench.harness import Harness, Side, log, report
from dangan.demo.data import demo_customers
from dangan.services.customers.duplicates import (
    Candidate,
    explain_find_duplicates,
    find_duplicates,
)
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.people import caller_for, create_user
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant, scope_sql

TENANT = "dedup"
COUNT = 100_000
COLUMNS = ("id", "kind", "name", "phone", "email", "id_number", "uscc", "address", "region")


class BenchmarkFailed(AssertionError):
    pass


async def _load(conn: asyncpg.Connection, tenant: TenantRef) -> str:
    """COPY the customers in; returns the name of one individual among them."""
    log(f"{TENANT}: generating {COUNT:,} customers")
    people = demo_customers(TENANT, COUNT)
    records = [
        (uuid.uuid4(), p.kind, p.name, p.phone, p.email, p.id_number, p.uscc, p.address, p.region)
        for p in people
    ]
    async with conn.transaction():
        await conn.execute(scope_sql(tenant))
        await conn.copy_records_to_table("customer", records=records, columns=COLUMNS)
    await conn.execute(f"{scope_sql(tenant)}; ANALYZE customer")
    log(f"{TENANT}: {COUNT:,} customers loaded")
    return next(p.name for p in people if p.kind == "INDIVIDUAL")


def raw_lookup(
    conn: asyncpg.Connection, tenant: TenantRef, phone: str
) -> Callable[[], Awaitable[Any]]:
    scope = scope_sql(tenant)

    async def raw() -> list[asyncpg.Record]:
        async with conn.transaction():
            await conn.execute(scope)
            return await conn.fetch("SELECT id FROM customer WHERE phone = $1", phone)

    return raw


def check_candidates(found: Any) -> None:
    candidates: list[Candidate] = found
    if not candidates or any(c.matched_on != ("name",) for c in candidates):
        raise BenchmarkFailed(f"expected name matches only, got {candidates[:3]}")


async def run(h: Harness) -> None:
    tenant = await find_tenant(TENANT) or await create_tenant(TENANT, "Dedup Bench Ltd")
    admin = caller_for(tenant, await create_user(tenant, "admin@dedup.bench", ["admin"]))
    rng = random.Random("dedup-bench")
    async with h.raw_connection() as conn:
        name = await _load(conn, tenant)
        values = {
            "name": name,
            "phone": make_mobile(rng),
            "id_number": make_id_number(rng, region="33"),
        }
        plan = await run_in_tenant(tenant, lambda: explain_find_duplicates(admin, [values]))
        print(f"duplicate_check plan:\n{plan}", flush=True)
        if "customer_name_trgm" not in plan:
            raise BenchmarkFailed("the name search does not use customer_name_trgm")

        async def api() -> list[Candidate]:
            return await run_in_tenant(tenant, lambda: find_duplicates(admin, values))

        api_ms, raw_ms = await h.compare(
            Side("find_duplicates", api, check_candidates),
            Side("raw phone lookup", raw_lookup(conn, tenant, values["phone"])),
        )
    print(f"duplicate_check p50: {api_ms:.2f} ms vs {raw_ms:.2f} ms raw", flush=True)
    report(f"duplicate_check ({COUNT:,} customers)", api_ms, raw_ms)
