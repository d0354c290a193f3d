"""arq jobs through real Redis: a worker in burst mode runs what the test enqueued.

The worker shares the session's Tortoise pool (``connect_database=False``), exactly as
the API does in tests (``create_app(..., own_database=False)``). Job ids carry the run's
Redis namespace: arq's job and result keys (``arq:job:<id>``) are not per queue, so two
deployments (or test runs) sharing one Redis keep apart only through their ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import JobStatus
from arq.utils import to_unix_ms
from arq.worker import Worker
from redis.asyncio import Redis

from dangan.devstack import Endpoints
from dangan.services.errors import NotFound
from dangan.settings import Settings
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers import progress
from dangan.workers.jobs import nightly_census
from dangan.workers.settings import build_worker
from tests.support.world import CUSTOMERS_PER_TENANT, World


@pytest.fixture
async def queue(endpoints: Endpoints, settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(endpoints.redis_url), default_queue_name=settings.queue_name
    )
    yield pool
    # arq keeps results a day under global keys: leave nothing behind on a shared Redis.
    stale = [key async for key in pool.scan_iter(match=f"arq:*{settings.redis_namespace}*")]
    if stale:
        await pool.delete(*stale)
    await pool.aclose()


def job_id(settings: Settings, what: str) -> str:
    return f"{settings.redis_namespace}:{what}:{uuid.uuid4().hex[:8]}"


def worker_for(settings: Settings, endpoints: Endpoints, **overrides: Any) -> Worker:
    return build_worker(
        settings, endpoints, connect_database=False, burst=True, poll_delay=0.05, **overrides
    )


def jobs_worker(settings: Settings, endpoints: Endpoints) -> Worker:
    """A burst worker without the crons, for tests that count the jobs it ran: a cron
    falling due during the burst (one runs every minute) would be counted with them."""
    return worker_for(settings, endpoints, cron_jobs=[])


async def run_burst(worker: Worker) -> Worker:
    """Run until the worker's queue is empty and its jobs are done, then close it."""
    try:
        await asyncio.wait_for(worker.main(), timeout=60)
    finally:
        await worker.close()
    return worker


async def customer_counts(world: World, slug: str) -> tuple[int, dict[str, int]]:
    """The tenant's customers now (other tests may have added some to the world's six)."""

    async def rows() -> Any:
        return await raw_connection().fetch("SELECT id, kind, tier FROM customer")

    found = await run_in_tenant(world[slug].ref, rows)
    assert {str(c["id"]) for c in world[slug].customers} <= {str(r["id"]) for r in found}
    return len(found), dict(Counter(f"{r['kind']}/{r['tier']}" for r in found))


async def test_tenant_census_through_redis(
    world: World, settings: Settings, endpoints: Endpoints, queue: ArqRedis
) -> None:
    job = await queue.enqueue_job(
        "tenant_census", "alpha", _queue_name=settings.queue_name, _job_id=job_id(settings, "c")
    )
    assert job is not None
    assert await job.status() == JobStatus.queued
    worker = await run_burst(jobs_worker(settings, endpoints))
    result = await job.result(timeout=10)
    total, by_kind_and_tier = await customer_counts(world, "alpha")
    assert result == {"tenant": "alpha", "customers": total, "by_kind_and_tier": by_kind_and_tier}
    assert total >= CUSTOMERS_PER_TENANT
    # The world's six: indices 0, 2, 4 are people (0 is KEY), 1, 3, 5 enterprises.
    assert by_kind_and_tier.get("INDIVIDUAL/KEY", 0) >= 1
    assert by_kind_and_tier.get("ENTERPRISE/POTENTIAL", 0) >= 3
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)


async def test_same_job_id_is_one_job(
    world: World, settings: Settings, endpoints: Endpoints, queue: ArqRedis
) -> None:
    ident = job_id(settings, "census:beta:slot")
    first = await queue.enqueue_job(
        "tenant_census", "beta", _queue_name=settings.queue_name, _job_id=ident
    )
    again = await queue.enqueue_job(
        "tenant_census", "beta", _queue_name=settings.queue_name, _job_id=ident
    )
    assert first is not None and again is None
    worker = await run_burst(jobs_worker(settings, endpoints))
    assert worker.jobs_complete == 1
    assert (await first.result(timeout=10))["tenant"] == "beta"
    # Its result is kept, so the slot stays taken after the run: a duplicate is refused.
    late = await queue.enqueue_job(
        "tenant_census", "beta", _queue_name=settings.queue_name, _job_id=ident
    )
    assert late is None


async def test_migrate_all_tenants_reports_progress(
    world: World, settings: Settings, endpoints: Endpoints, queue: ArqRedis, redis: Redis
) -> None:
    ident = job_id(settings, "migrate-all")
    job = await queue.enqueue_job(
        "migrate_all_tenants", _queue_name=settings.queue_name, _job_id=ident
    )
    assert job is not None
    assert await progress.read(redis, settings.redis_namespace, ident) is None
    await run_burst(worker_for(settings, endpoints))
    result = await job.result(timeout=10)
    tenants = await list_tenants()
    assert result == {"tenants": len(tenants), "versions_applied": 0}  # already up to date
    report = await progress.read(redis, settings.redis_namespace, ident)
    assert report is not None
    assert report["done"] == report["total"] == len(tenants) >= 3
    assert report["stage"] == tenants[-1].slug
    assert await redis.ttl(progress.progress_key(settings.redis_namespace, ident)) > 0


async def test_unknown_tenant_fails_with_not_found(
    world: World, settings: Settings, endpoints: Endpoints, queue: ArqRedis
) -> None:
    job = await queue.enqueue_job(
        "tenant_census", "nosuch", _queue_name=settings.queue_name, _job_id=job_id(settings, "x")
    )
    assert job is not None
    worker = await run_burst(jobs_worker(settings, endpoints))
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (0, 1, 0)
    with pytest.raises(NotFound, match="no tenant named 'nosuch'"):
        await job.result(timeout=10)
    info = await job.result_info()
    assert info is not None and not info.success


async def test_session_pool_survives_a_worker(world: World, settings: Settings) -> None:
    """The workers above shared our pool and left it open."""
    assert {"alpha", "beta", "gamma"} <= {t.slug for t in await list_tenants()}


def _settings_for(settings: Settings, namespace: str) -> Settings:
    return settings.model_copy(update={"redis_namespace": namespace})


async def test_cron_slot_runs_once_in_each_deployment(
    world: World, settings: Settings, endpoints: Endpoints, redis: Redis, queue: ArqRedis
) -> None:
    """Two deployments sharing one Redis each run the nightly census for the same slot;
    two replicas of one deployment run it once."""
    slot = datetime.now(UTC) + timedelta(milliseconds=800)  # inside arq's 1 s cron window
    deployments = [_settings_for(settings, f"{settings.redis_namespace}-{n}") for n in "ab"]
    workers = [worker_for(s, endpoints) for s in (*deployments, deployments[0])]
    far = slot + timedelta(days=1)

    def nightly_of(worker):
        return next(job for job in worker.cron_jobs if job.coroutine is nightly_census)

    for worker in workers:
        for job in worker.cron_jobs:  # only the nightly slot is due in this test
            job.next_run = slot if job is nightly_of(worker) else far
    await asyncio.gather(*(run_burst(w) for w in workers))
    a, b, a_replica = workers
    assert b.jobs_complete == 1, "deployment b lost its slot to deployment a"
    assert a.jobs_complete + a_replica.jobs_complete == 1, "one deployment ran a slot twice"
    assert sum(w.jobs_failed for w in workers) == 0
    tenants = len(await list_tenants())
    for deployment, worker in zip(deployments, workers, strict=False):
        ident = f"{nightly_of(worker).name}:{to_unix_ms(slot)}"
        report = await progress.read(redis, deployment.redis_namespace, ident)
        assert report is not None, f"{deployment.redis_namespace} did not run its slot"
        assert report["done"] == report["total"] == tenants
