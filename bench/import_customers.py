"""Importing 10,000 valid customers from a CSV, through the import job, against a raw
``COPY`` of the same rows.

Import side: ``start_customer_import`` as a scratch tenant's admin (the file goes to
S3, the archive_job row is written), then the job function the worker runs
(``import_customers``) in ``IMPORT_VALID_ROWS`` mode: read the file from S3, parse, check
every row (field checks, owner, duplicates against the tenant and within the file), write
in batches with the policy checks on the inserted rows and a change record per
customer, and record progress. Checked after every run: 10,000 imported, no error.

Floor: ``copy_records_to_table`` of the same rows, already normalised, on a plain
asyncpg connection scoped like a request — no checks, no history.

Each round imports into an empty tenant (the previous round's rows are deleted and the
table vacuumed, not timed), the two sides alternating which goes first. Rounds default
to at most 3: one import takes seconds.
"""

from __future__ import annotations

import csv
import io
import random
import statistics
import time
from base64 import b64encode
from typing import Any

from bench.harness import Harness, log, report
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.imports import start_customer_import
from dangan.services.people import caller_for, create_user
from dangan.tenants.names import quote_ident
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant, scope_sql
from dangan.workers.archive import import_customers

TENANT = "bench_import"
ROWS = 10_000
ROUNDS = 3
HEADER = ("kind", "name", "phone", "idNumber", "region", "tier")
COLUMNS = ("kind", "name", "phone", "id_number", "region", "tier", "owner_id")


class BenchmarkFailed(AssertionError):
    pass


def rows() -> list[tuple[str, ...]]:
    """ROWS individuals with distinct, valid mobiles and ID numbers."""
    rng = random.Random("bench-import")
    phones: set[str] = set()
    ids: set[str] = set()
    while len(phones) < ROWS:
        phones.add(make_mobile(rng))
    while len(ids) < ROWS:
        ids.add(make_id_number(rng, region="33"))
    return [
        ("INDIVIDUAL", f"基准客户{index:05d}", phone, id_number, "浙江省", "ORDINARY")
        for index, (phone, id_number) in enumerate(zip(sorted(phones), sorted(ids), strict=True))
    ]


def csv_base64(data: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(data)
    return b64encode(out.getvalue().encode()).decode()


async def empty(h: Harness, tenant: TenantRef) -> None:
    """Delete every customer, then VACUUM: the dead rows would otherwise stay in the
    trigram index, and every look-alike name of the next round (基准客户00001, …) would
    go through thousands of them."""

    async def delete() -> None:
        await raw_connection().execute("DELETE FROM customer")

    await run_in_tenant(tenant, delete)
    async with h.raw_connection() as conn:
        await conn.execute(f"SET ROLE {quote_ident(tenant.role_name)}")
        await conn.execute(f"VACUUM {quote_ident(tenant.schema_name)}.customer")


async def count(tenant: TenantRef) -> int:
    async def rows_now() -> int:
        return int(await raw_connection().fetchval("SELECT count(*) FROM customer"))

    return await run_in_tenant(tenant, rows_now)


async def run(h: Harness) -> None:
    tenant = await create_tenant(TENANT, "Import benchmark")
    admin = await create_user(tenant, "admin@bench-import.test", ["admin"])
    caller = caller_for(tenant, admin)
    data = rows()
    content = csv_base64(data)
    state = h.app.state
    ctx: dict[str, Any] = {"settings": h.settings, "objects": state.objects, "redis": state.jobs}
    records = [(*row, admin.identity_id) for row in data]

    async def through_import() -> None:
        async def start() -> dict[str, Any]:
            return await start_customer_import(
                caller,
                format="CSV",
                filename="bench.csv",
                content_base64=content,
                mode="IMPORT_VALID_ROWS",
                allow_possible_duplicates=False,
                objects=state.objects,
                queue=state.jobs,
                settings=h.settings,
            )

        job = await run_in_tenant(tenant, start)
        result = await import_customers(ctx, TENANT, str(job["id"]))
        if result.get("imported") != ROWS or result.get("errors"):
            raise BenchmarkFailed(f"the import did not write {ROWS} rows: {str(result)[:500]}")

    async def raw_copy() -> None:
        async with h.raw_connection() as conn, conn.transaction():
            await conn.execute(scope_sql(tenant))
            await conn.copy_records_to_table("customer", records=records, columns=COLUMNS)

    sides = {"import": through_import, "raw": raw_copy}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    rounds = min(h.rounds, ROUNDS)
    for round_no in range(rounds):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for name in order:
            await empty(h, tenant)
            began = time.perf_counter()
            await sides[name]()
            samples[name].append((time.perf_counter() - began) * 1000)
            if await count(tenant) != ROWS:
                raise BenchmarkFailed(f"{name} left {await count(tenant)} rows, not {ROWS}")
        log(f"round {round_no + 1}/{rounds}: import {samples['import'][-1]:.0f} ms")
    await empty(h, tenant)
    stale = [key async for key in state.jobs.scan_iter(match=f"*{h.settings.redis_namespace}*")]
    if stale:
        await state.jobs.delete(*stale)
    report(
        f"import_customers ({ROWS:,} rows)",
        statistics.median(samples["import"]),
        statistics.median(samples["raw"]),
    )
