"""One real stack for every benchmark, and the interleaved timing they all use.

:func:`open_harness` starts the embedded stack (PostgreSQL, Redis, S3) in a temporary
data dir — or uses the ``DANGAN_DATABASE_URL`` / ``DANGAN_REDIS_URL`` / ``DANGAN_S3_ENDPOINT``
servers, with a database of this run's own that is dropped at the end — migrates, seeds
the demo (tenant ``east`` with 1,000 customers, staff of every role) and serves the real
ASGI app in-process through httpx. A request timed through :meth:`Harness.graphql` runs
the whole HTTP handler: tenant lookup, authentication, limits and validation, the tenant
transaction (``SET LOCAL search_path`` / ``ROLE``), Strawberry execution, JSON encoding.

Timing: :func:`compare` runs the sides of a comparison interleaved (each round runs
every side once, starting from a different side each round) after a warm-up, and returns
each side's median, so the noise of a shared machine falls on all sides alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from dangan import database
from dangan.app import create_app
from dangan.demo.seed import seed_demo
from dangan.devstack import DevStack, Endpoints
from dangan.devstack.scratch import scratch_database
from dangan.settings import Settings
from dangan.tenants.migrations import migrate_platform
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef

WARMUP = 5
ROUNDS = 25
CUSTOMERS_PER_TENANT = 1000
BASE_URL = "http://dangan.bench"


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the figures."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- timing


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a comparison: ``run`` is timed; ``check`` (not timed) sees its result
    after every call and should raise if the result is wrong."""

    name: str
    run: Callable[[], Awaitable[Any]]
    check: Callable[[Any], None] | None = None


async def _time_once(side: Side) -> float:
    started = time.perf_counter()
    result = await side.run()
    elapsed_ms = (time.perf_counter() - started) * 1000
    if side.check is not None:
        side.check(result)
    return elapsed_ms


async def compare(*sides: Side, warmup: int = WARMUP, rounds: int = ROUNDS) -> list[float]:
    """The median milliseconds of each side, in the order given, measured interleaved."""
    if not sides or rounds < 1 or warmup < 0:
        raise ValueError("compare needs at least one side, rounds >= 1 and warmup >= 0")
    samples: list[list[float]] = [[] for _ in sides]
    count = len(sides)
    for round_no in range(warmup + rounds):
        start = round_no % count
        for index in (*range(start, count), *range(start)):
            elapsed = await _time_once(sides[index])
            if round_no >= warmup:
                samples[index].append(elapsed)
    return [statistics.median(times) for times in samples]


async def median_ms(
    fn: Callable[[], Awaitable[Any]],
    rounds: int = ROUNDS,
    *,
    warmup: int = WARMUP,
    check: Callable[[Any], None] | None = None,
) -> float:
    """The median milliseconds of ``fn`` alone (prefer :func:`compare` for ratios)."""
    (median,) = await compare(Side("", fn, check), warmup=warmup, rounds=rounds)
    return median


def format_report(name: str, api_ms: float, raw_ms: float) -> str:
    return f"{name}: {api_ms / raw_ms:.2f}x floor ({api_ms:.1f} ms vs {raw_ms:.1f} ms)"


def report(name: str, api_ms: float, raw_ms: float) -> None:
    """Print ``<name>: <ratio>x floor (<api> ms vs <raw> ms)`` on stdout."""
    print(format_report(name, api_ms, raw_ms), flush=True)


# ----------------------------------------------------------------------------- stack


@dataclasses.dataclass
class Harness:
    """What a benchmark gets: the running app, an HTTP client on it, the demo's
    credentials and a way to open plain asyncpg connections to the same database."""

    settings: Settings
    endpoints: Endpoints
    app: Starlette
    client: httpx.AsyncClient
    credentials: dict[str, Any]
    warmup: int = WARMUP
    rounds: int = ROUNDS

    def token(self, tenant: str, user: str = "admin") -> str:
        """A bearer token of a demo user (``admin``, ``manager``, ``sales``, ...)."""
        return str(self.credentials["tenants"][tenant]["users"][user]["token"])

    async def graphql(
        self,
        tenant: str,
        user: str,
        query: str,
        variables: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """POST a document to ``/t/<tenant>/graphql`` as a demo user; the raw response."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        return await self.client.post(
            f"/t/{tenant}/graphql",
            json=payload,
            headers={"Authorization": f"Bearer {self.token(tenant, user)}"},
        )

    async def tenant(self, slug: str) -> TenantRef:
        found = await find_tenant(slug)
        if found is None:
            raise RuntimeError(f"the demo has no tenant {slug!r}")
        return found

    @asynccontextmanager
    async def raw_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A plain asyncpg connection (no Tortoise, no pool) as the app's database user."""
        conn = await asyncpg.connect(self.endpoints.database_url)
        try:
            yield conn
        finally:
            await conn.close()

    async def compare(self, *sides: Side) -> list[float]:
        return await compare(*sides, warmup=self.warmup, rounds=self.rounds)


async def _remove_bucket(app: Starlette, bucket: str) -> None:
    """Remove the run's (empty) bucket from an external S3; the embedded one is in memory."""
    with suppress(Exception):
        await asyncio.to_thread(app.state.s3.remove_bucket, bucket)


def bench_settings(data_dir: Path, run_id: str) -> Settings:
    """Production settings (no GraphiQL, JSON logs) with this run's own namespaces.

    ``DANGAN_DATABASE_URL`` / ``DANGAN_REDIS_URL`` / ``DANGAN_S3_ENDPOINT`` still come
    from the environment (Settings reads it); what is passed here overrides the rest.
    """
    return Settings(
        env="prod",
        data_dir=data_dir,
        redis_namespace=f"dangan-bench-{run_id}",
        s3_bucket=f"dangan-bench-{run_id}",
        secret_key=secrets.token_urlsafe(48),
        demo_customers_per_tenant=CUSTOMERS_PER_TENANT,
    )


@asynccontextmanager
async def open_harness(*, warmup: int = WARMUP, rounds: int = ROUNDS) -> AsyncIterator[Harness]:
    """Start, migrate, seed and serve; tear everything down (and drop the run's
    database on an external server) on the way out."""
    run_id = secrets.token_hex(4)
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="dangan-bench-"))
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as an unprivileged user
        settings = bench_settings(Path(tmp) / "data", run_id)
        began = time.monotonic()
        # Started on the main thread on purpose: the servers' death signal fires when the
        # forking thread exits, so they must not be forked from a short-lived worker.
        endpoints = stack.enter_context(DevStack(settings))
        external = settings.database_url
        if external:
            url = await stack.enter_async_context(scratch_database(external, "dangan_bench"))
            endpoints = dataclasses.replace(endpoints, database_url=url)
        log(f"stack up in {time.monotonic() - began:.1f}s")

        await database.connect(endpoints.database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(database.disconnect)
        await migrate_platform()
        began = time.monotonic()
        credentials = await seed_demo(settings, BASE_URL, progress=log)
        log(f"demo seeded in {time.monotonic() - began:.1f}s")

        app = create_app(settings, endpoints, own_database=False)
        await stack.enter_async_context(app.router.lifespan_context(app))
        # The lifespan configures logging at INFO, where httpx logs every request: that
        # would be client-side work inside every timed API call (and noise on stderr).
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if settings.s3_endpoint:
            stack.push_async_callback(_remove_bucket, app, settings.s3_bucket)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        )
        yield Harness(
            settings=settings,
            endpoints=endpoints,
            app=app,
            client=client,
            credentials=credentials,
            warmup=warmup,
            rounds=rounds,
        )
