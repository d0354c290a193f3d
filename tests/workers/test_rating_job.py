"""Rating jobs through a real arq worker: progress in Redis, one job per tenant and slot,
the same outcome when run twice, and a criteria job that waits for its commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from arq import ArqRedis
from redis.asyncio import Redis

from dangan.devstack import Endpoints
from dangan.services.callers import Caller
from dangan.services.people import caller_for, create_user
from dangan.services.rating.jobs import arq_job_id, enqueue_rating, nightly_slot, rating_job
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers import progress
from dangan.workers.rating import nightly_ratings
from tests.support.rating import HISTORIES, history_rows, insert_history
from tests.support.tenants import drop_tenant
from tests.workers.test_jobs import jobs_worker, queue, run_burst  # noqa: F401 (fixture)

SLUG = "rating_job"
Scratch = tuple[TenantRef, dict[str, uuid.UUID], Caller]


@pytest.fixture(scope="module")
async def tenant(world: Any) -> AsyncIterator[Scratch]:
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Rating Jobs Ltd")
    sales = await create_user(ref, "sales@rating-job.test", ["sales"], department="销售部")
    admin = await create_user(ref, "admin@rating-job.test", ["admin"])

    async def fill() -> dict[str, uuid.UUID]:
        return {
            h.key: await insert_history(
                h, owner_id=sales.identity_id, department_id=sales.department_id, name_prefix="J"
            )
            for h in HISTORIES
        }

    ids = await run_in_tenant(ref, fill)
    yield ref, ids, caller_for(ref, admin)
    await drop_tenant(SLUG)


async def _scores(ref: TenantRef) -> dict[uuid.UUID, Any]:
    rows = await run_in_tenant(
        ref, lambda: raw_connection().fetch("SELECT id, rating_score, rating_grade FROM customer")
    )
    return {row["id"]: (row["rating_score"], row["rating_grade"]) for row in rows}


async def _enqueue(pool: ArqRedis, settings: Settings, slot: str, **extra: Any) -> str:
    return await enqueue_rating(
        pool,
        queue_name=settings.queue_name,
        namespace=settings.redis_namespace,
        slug=SLUG,
        slot=slot,
        trigger=extra.pop("trigger", "nightly"),
        **extra,
    )


async def test_job_rates_the_tenant_reports_progress_and_runs_twice_alike(
    tenant: Scratch,
    settings: Settings,
    endpoints: Endpoints,
    queue: ArqRedis,  # noqa: F811
    redis: Redis,
) -> None:
    ref, ids, admin = tenant
    first = await _enqueue(queue, settings, f"test-{uuid.uuid4().hex[:8]}")
    again = await _enqueue(queue, settings, first.rsplit(":", 1)[1])
    assert again == first
    worker = await run_burst(jobs_worker(settings, endpoints))
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0), "a double enqueue ran twice"
    report = await progress.read(
        redis, settings.redis_namespace, arq_job_id(settings.redis_namespace, first)
    )
    assert report is not None
    assert report["done"] == report["total"] == 5 and report["stage"] == SLUG
    state = await rating_job(
        admin,
        queue,
        queue_name=settings.queue_name,
        namespace=settings.redis_namespace,
        public_id=first,
    )
    assert (state.status, state.done, state.total) == ("complete", 5, 5)
    scores = await _scores(ref)
    for history in HISTORIES:
        assert scores[ids[history.key]] == (history.score, history.grade), history.key

    second = await _enqueue(queue, settings, f"test-{uuid.uuid4().hex[:8]}")
    worker = await run_burst(jobs_worker(settings, endpoints))
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert await _scores(ref) == scores
    for key in ("mid", "top", "new"):
        rows = await run_in_tenant(ref, lambda k=key: history_rows(ids[k]))
        assert [r["trigger"] for r in rows] == ["nightly"], "a rerun appended history"
    assert second != first


async def test_criteria_job_waits_for_its_version(
    tenant: Scratch,
    settings: Settings,
    endpoints: Endpoints,
    queue: ArqRedis,  # noqa: F811
) -> None:
    """A version not committed yet (here: never) is retried, then given up on."""
    await _enqueue(queue, settings, "criteria-future", trigger="criteria", criteria_version=2**62)
    worker = await run_burst(jobs_worker(settings, endpoints))
    assert worker.jobs_complete == 0
    assert worker.jobs_retried >= 1 and worker.jobs_failed == 1


async def test_nightly_cron_enqueues_one_job_per_tenant_and_day(
    tenant: Scratch,
    settings: Settings,
    queue: ArqRedis,  # noqa: F811
) -> None:
    ctx = {"redis": queue, "settings": settings}
    enqueued = await nightly_ratings(ctx)
    slot = nightly_slot(datetime.now(UTC).date())
    slugs = {t.slug for t in await list_tenants()}
    assert enqueued == {slug: f"rating:{slug}:{slot}" for slug in slugs}
    queued = {job.job_id for job in await queue.queued_jobs(queue_name=settings.queue_name)}
    mine = {arq_job_id(settings.redis_namespace, public) for public in enqueued.values()}
    assert mine <= queued
    await nightly_ratings(ctx)  # a replica, or the same slot again: nothing new
    after = [job.job_id for job in await queue.queued_jobs(queue_name=settings.queue_name)]
    assert sorted(job for job in after if job in mine) == sorted(mine)
    # Leave the world's tenants unrated: take the jobs off the queue (the fixture
    # removes their keys).
    await queue.zrem(settings.queue_name, *mine)
