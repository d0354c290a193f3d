"""The backup of one tenant with 1 and with 1,000 tenants in the cluster.

Setup: a fresh database of its own (``one``, next to the run's database and owned by the
app's role): the platform schema, then the measured tenant (``bench_many``, 2,000
customers and their records by :func:`bench.backup_data.fill_tenant`, about 6 MB of COPY
text — small, so that what a larger catalogue costs per backup is not hidden under the
data).

1. One tenant: :func:`dangan.backups.writer.run_backup` of the measured tenant,
   interleaved with a control — a raw ``COPY`` of its tables, named beforehand so that
   the control reads no catalogue.
2. ``many`` is made as a copy of ``one`` (``CREATE DATABASE … TEMPLATE``: the measured
   tenant byte for byte, with the same role), and 999 more tenants are created in it
   with :func:`dangan.tenants.provisioning.create_tenant` — registry row, role, schema,
   every migration — four at a time (65–120 ms a tenant on the shared 2-core machine:
   one to two minutes; one at a time takes about twice as long).
3. 1 against 1,000: the backup of the same tenant in ``one`` and in ``many``, and both
   controls, interleaved round by round, so that the machine's load falls on both alike;
   also the backup in ``many`` through the connections that created its tenants (each
   has touched hundreds of schemas, as a worker's connections have that back every
   tenant up in turn — PostgreSQL caches what a connection has seen).
   Tenants share a database in Dangan, so the catalogue a backup reads (``pg_class``,
   ``pg_depend``, …) is the database's; roles, the rest of the shared catalogue and
   shared buffers are the cluster's, and so the same for both.

Printed: step 3's medians and their ratio (target at most 1.2x), the controls', and for
comparison step 1's one-tenant figure (minutes earlier: the machine's load may have
changed, which the control shows). Rounds default to at most 7 after 1 warm-up; each
backup has a new manual backup id (the two databases share the backup bucket).

The services find the database through Tortoise: each database gets a Tortoise context
of its own (:class:`tortoise.context.TortoiseContext`), entered around each call; the
run's own connection stays as it is. Both databases, and the tenant roles they made, are
dropped at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise.context import TortoiseContext

from bench.backup_data import TABLES, fill_tenant
from bench.backup_throughput import manual_id
from bench.harness import Harness, Side, compare, log
from dangan.audit.actions import ActionLog
from dangan.backups.store import BackupStore, open_backup_store
from dangan.backups.writer import BackupOutcome, run_backup
from dangan.database import tortoise_config
from dangan.devstack.scratch import scratch_database, with_database
from dangan.storage import s3_client
from dangan.tenants.migrations import migrate_platform
from dangan.tenants.names import quote_ident
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, scope_sql

SCRATCH = "dangan_bench_tenants"
TENANT = "bench_many"
CUSTOMERS = 2_000
TENANTS = 1_000
CONCURRENCY = 4
ROUNDS = 7
WARMUP = 1
TARGET = 1.2


class BenchmarkFailed(AssertionError):
    pass


# ----------------------------------------------------------------------------- databases


async def _admin_execute(url: str, *statements: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@asynccontextmanager
async def scratch(h: Harness) -> AsyncIterator[tuple[str, str]]:
    """A fresh database for the app's role: (its URL, a URL of a role that may copy
    it). On the embedded stack the app's role may not create databases: the superuser
    makes it and hands it over; elsewhere the app's role does, as for the run's own."""
    admin = h.endpoints.admin_database_url
    if admin is None:
        async with scratch_database(h.endpoints.database_url, SCRATCH) as url:
            yield url, url
        return
    async with scratch_database(admin, SCRATCH) as admin_url:
        name = _name(admin_url)
        owner = urlsplit(h.endpoints.database_url).username or "postgres"
        await _admin_execute(
            admin_url, f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(owner)}"
        )
        yield with_database(h.endpoints.database_url, name), admin_url


@asynccontextmanager
async def copy_of(h: Harness, url: str, admin_url: str) -> AsyncIterator[str]:
    """A copy of the database at ``url`` (nobody may be connected to it meanwhile);
    dropped at the end with the tenant roles only the copy has."""
    name = f"{_name(url)}_many"
    owner = urlsplit(h.endpoints.database_url).username or "postgres"
    await _admin_execute(
        admin_url,
        f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(_name(url))}",
        f"ALTER DATABASE {quote_ident(name)} OWNER TO {quote_ident(owner)}",
    )
    copy_url = with_database(h.endpoints.database_url, name)
    try:
        yield copy_url
    finally:
        conn = await asyncpg.connect(copy_url)
        try:
            roles = [r["role_name"] for r in await conn.fetch("SELECT role_name FROM tenant")]
        finally:
            await conn.close()
        conn = await asyncpg.connect(url)
        try:
            kept = {r["role_name"] for r in await conn.fetch("SELECT role_name FROM tenant")}
        finally:
            await conn.close()
        await _admin_execute(admin_url, f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
        for role in roles:
            if role not in kept:
                await _admin_execute(admin_url, f"DROP ROLE IF EXISTS {quote_ident(role)}")


@asynccontextmanager
async def tortoise_on(url: str, pool_size: int) -> AsyncIterator[TortoiseContext]:
    """A Tortoise context on ``url``; enter it (``with``) around the calls that use it."""
    context = TortoiseContext()
    with context:
        await context.init(config=tortoise_config(url, pool_size=pool_size))
    try:
        yield context
    finally:
        await context.close_connections()


# ----------------------------------------------------------------------------- the arms


async def add_tenants(count: int) -> float:
    """``count`` more tenants, :data:`CONCURRENCY` at a time; the seconds it took."""
    began = time.monotonic()
    room = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def one(number: int) -> None:
        nonlocal done
        async with room:
            await create_tenant(f"other_{number:04d}", f"Other {number}")
        done += 1
        if done % 200 == 0:
            log(f"{done}/{count} tenants added, {time.monotonic() - began:.0f}s")

    await asyncio.gather(*(one(number) for number in range(1, count + 1)))
    return time.monotonic() - began


class Arm:
    """The measured tenant in one database: its backup, and the control."""

    def __init__(
        self,
        h: Harness,
        context: TortoiseContext,
        conn: asyncpg.Connection,
        tenant: TenantRef,
        store: BackupStore,
        numbers: itertools.count[int],
    ) -> None:
        self.h, self.context, self.conn, self.tenant = h, context, conn, tenant
        self.store, self.numbers = store, numbers
        self.log = ActionLog(h.settings.secret_key, "job")
        self.tables: list[str] = []

    async def prepare(self, tenants: int) -> None:
        """Check the database holds ``tenants`` tenants; list the measured one's tables."""
        found = await self.conn.fetchval("SELECT count(*) FROM public.tenant")
        if found != tenants:
            raise BenchmarkFailed(f"expected {tenants} tenants in the database, found {found}")
        async with self.conn.transaction():
            await self.conn.execute(scope_sql(self.tenant))
            self.tables = [row["relname"] for row in await self.conn.fetch(TABLES)]

    async def backup(self) -> BackupOutcome:
        backup_id = manual_id(next(self.numbers))
        with self.context:
            return await run_backup(
                self.h.settings,
                self.store,
                self.h.app.state.objects,
                self.tenant,
                backup_id,
                "manual",
                self.log,
            )

    def check_backup(self, outcome: Any) -> None:
        if not outcome.made or outcome.record.tables != len(self.tables):
            raise BenchmarkFailed(f"backup {outcome.record.id} is not a new one of every table")

    async def control(self) -> int:
        copied = 0

        async def discard(chunk: bytes) -> None:
            nonlocal copied
            copied += len(chunk)

        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            await self.conn.execute(scope_sql(self.tenant))
            for table in self.tables:
                await self.conn.copy_from_table(table, output=discard)
        return copied

    def sides(self, label: str) -> list[Side]:
        return [
            Side(f"backup ({label})", self.backup, self.check_backup),
            Side(f"control ({label})", self.control),
        ]


@asynccontextmanager
async def arm(
    h: Harness,
    url: str,
    tenants: int,
    tenant: TenantRef,
    store: BackupStore,
    numbers: itertools.count[int],
) -> AsyncIterator[Arm]:
    async with tortoise_on(url, h.settings.db_pool_size) as context:
        conn = await asyncpg.connect(url)
        try:
            measured = Arm(h, context, conn, tenant, store, numbers)
            await measured.prepare(tenants)
            yield measured
        finally:
            await conn.close()


async def in_context(context: TortoiseContext, work: Callable[[], Awaitable[Any]]) -> Any:
    with context:
        return await work()


async def run(h: Harness) -> None:
    store = await open_backup_store(s3_client(h.endpoints), h.settings)
    numbers = itertools.count()
    warmup, rounds = min(h.warmup, WARMUP), min(h.rounds, ROUNDS)
    async with scratch(h) as (one_url, admin_url):
        async with tortoise_on(one_url, h.settings.db_pool_size) as context:

            async def setup() -> TenantRef:
                await migrate_platform()
                made = await create_tenant(TENANT, "Many Tenants Ltd")
                conn = await asyncpg.connect(one_url)
                try:
                    await fill_tenant(conn, made, CUSTOMERS)
                finally:
                    await conn.close()
                return made

            tenant = await in_context(context, setup)

        async with arm(h, one_url, 1, tenant, store, numbers) as alone:
            first_ms, first_control_ms = await compare(
                *alone.sides("1 tenant"), warmup=warmup, rounds=rounds
            )
        log(f"1 tenant: backup {first_ms:.0f} ms, control {first_control_ms:.0f} ms")

        async with (
            copy_of(h, one_url, admin_url) as many_url,
            tortoise_on(many_url, h.settings.db_pool_size) as creator,
        ):
            seconds = await in_context(creator, lambda: add_tenants(TENANTS - 1))
            each_ms = seconds / (TENANTS - 1) * 1000
            log(f"{TENANTS - 1} tenants created in {seconds:.0f}s ({each_ms:.0f} ms each)")
            async with (
                arm(h, one_url, 1, tenant, store, numbers) as one,
                arm(h, many_url, TENANTS, tenant, store, numbers) as many,
            ):
                # The same database through the connections that created the tenants
                # (each has touched a few hundred schemas, as a worker's have that backs
                # every tenant up in turn).
                worn = Arm(h, creator, many.conn, tenant, store, numbers)
                worn.tables = many.tables
                one_ms, one_control_ms, many_ms, many_control_ms, worn_ms = await compare(
                    *one.sides("1 tenant"),
                    *many.sides(f"{TENANTS} tenants"),
                    Side("backup (worn connections)", worn.backup, worn.check_backup),
                    warmup=warmup,
                    rounds=rounds,
                )
        log("dropping the scratch databases and their tenant roles")
    print(
        f"backup_many_tenants ({CUSTOMERS:,} customers): backup with 1 tenant {one_ms:.0f} ms,"
        f" with {TENANTS:,} tenants {many_ms:.0f} ms = {many_ms / one_ms:.2f}x"
        f" (target <= {TARGET}x); control (raw COPY) {one_control_ms:.0f} vs"
        f" {many_control_ms:.0f} ms; through connections that made the {TENANTS:,}:"
        f" {worn_ms:.0f} ms; 1 tenant alone before: {first_ms:.0f} ms"
        f" (control {first_control_ms:.0f} ms); {TENANTS - 1} tenants created in {seconds:.0f}s",
        flush=True,
    )
