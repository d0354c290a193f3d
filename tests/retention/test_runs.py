"""Runs: the dry run changes nothing and says what would go and why; the nightly cron
enqueues one job per tenant and day, which a worker runs; ``dangan purge run``; other
tenants are never touched; the schema's references to customers are all accounted for."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from redis.asyncio import Redis

from dangan.cli_records import os_user
from dangan.devstack import Endpoints
from dangan.services.retention.destruction import CUSTOMER_REFERENCES
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers import progress
from dangan.workers.retention import nightly_retention, retention_job_id
from dangan.workers.settings import build_worker
from tests.retention.support import YEAR, Scratch, attach, now
from tests.support.world import World
from tests.test_cli import DANGAN, cli_env

GRACE = timedelta(days=30)
_TABLES = (
    "customer",
    "communication",
    "share_request",
    "attachment",
    "customer_change",
    "retention_candidate",
    "legal_hold",
    "destruction_record",
    "retention_object_removal",
    "audit_event",
)


async def _snapshot(scratch: Scratch) -> dict[str, Any]:
    counts = {t: await scratch.value(f"SELECT count(*) FROM {t}") for t in _TABLES}
    marked = await scratch.sql("SELECT id, status, due_at FROM retention_candidate ORDER BY id")
    head = await scratch.value("SELECT last_hash FROM audit_head")
    return {**counts, "candidates": [tuple(r) for r in marked], "head": head}


async def _scenario(scratch: Scratch, objects: ObjectStore) -> dict[str, uuid.UUID]:
    """An invalid customer marked a grace period ago (with a file), and a potential
    customer not marked yet."""
    invalid = await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    await attach(scratch, objects, invalid)
    await scratch.run(objects, at=now() - GRACE - timedelta(days=1))
    idle = await scratch.customer("沉睡潜客", kind="POTENTIAL", age=3 * YEAR)
    return {"invalid": invalid, "idle": idle}


async def test_a_dry_run_says_what_would_go_and_why_and_changes_nothing(
    scratch: Scratch, objects: ObjectStore
) -> None:
    ids = await _scenario(scratch, objects)
    before = await _snapshot(scratch)

    report = await scratch.run(objects, dry_run=True)

    assert report.dry_run
    (outcome,) = report.destructions
    assert outcome.status == "would_destroy" and outcome.record_id is None
    assert [line.record_id for line in outcome.destroyed] == [ids["invalid"]]
    assert outcome.destroyed[0].reason.startswith("status INVALID since ")
    assert outcome.counts["customer"] == 1 and outcome.counts["attachment"] == 1
    assert outcome.objects_queued == 1
    assert [line.record_id for line in report.marked] == [ids["idle"]]
    assert await _snapshot(scratch) == before

    async def write_in_dry_run() -> None:  # the dry run's transaction is read-only
        await raw_connection().execute("SET LOCAL transaction_read_only = on")
        await raw_connection().execute("DELETE FROM retention_candidate")

    with pytest.raises(Exception, match="read-only"):
        await run_in_tenant(scratch.ref, write_in_dry_run)


async def test_a_run_touches_no_other_tenant(
    scratch: Scratch, objects: ObjectStore, world: World
) -> None:
    async def state() -> Any:
        customers = await raw_connection().fetchval("SELECT count(*) FROM customer")
        candidates = await raw_connection().fetchval("SELECT count(*) FROM retention_candidate")
        return customers, candidates

    before = {slug: await run_in_tenant(world[slug].ref, state) for slug in ("alpha", "beta")}
    ids = await _scenario(scratch, objects)
    report = await scratch.run(objects, at=now() + 10 * YEAR)  # the world's data would be old
    assert report.destructions and not await scratch.exists("customer", ids["invalid"])
    after = {slug: await run_in_tenant(world[slug].ref, state) for slug in ("alpha", "beta")}
    assert after == before


async def test_every_reference_to_a_customer_is_destroyed_with_it(scratch: Scratch) -> None:
    rows = await scratch.sql(
        "SELECT conrelid::regclass::text AS tbl, a.attname AS col, confdeltype::text AS deletion"
        "  FROM pg_constraint k JOIN pg_attribute a"
        "    ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)"
        " WHERE k.contype = 'f' AND k.confrelid = 'customer'::regclass"
    )
    found = {(r["tbl"], r["col"]): r["deletion"] for r in rows}
    assert found.pop(("customer", "merged_into")) == "n"  # SET NULL: merged ones go along
    assert set(found) == set(CUSTOMER_REFERENCES)
    assert set(found.values()) == {"c"}  # ON DELETE CASCADE, every one


async def test_the_nightly_cron_runs_each_tenant_once_a_day(
    scratch: Scratch, objects: ObjectStore, settings: Settings, endpoints: Endpoints
) -> None:
    ids = await _scenario(scratch, objects)
    worker = build_worker(settings, endpoints, connect_database=False, burst=True, poll_delay=0.05)
    (cron,) = [job for job in worker.cron_jobs if job.coroutine is nightly_retention]
    assert cron.name == f"cron:{settings.redis_namespace}:nightly_retention" and cron.unique
    assert (cron.hour, cron.minute) == ({4}, {15})
    pool = await create_pool(
        RedisSettings.from_dsn(endpoints.redis_url), default_queue_name=settings.queue_name
    )
    try:
        ctx = {"redis": pool, "settings": settings}
        queued = await nightly_retention(ctx)
        assert queued == await nightly_retention(ctx)  # one job per tenant and day
        day = datetime.now(UTC).date().isoformat()
        expected = retention_job_id(settings.redis_namespace, scratch.slug, day)
        assert queued[scratch.slug] == expected
        assert {"alpha", "beta", "gamma"} <= queued.keys()
        try:
            await worker.main()
        finally:
            await worker.close()
        result = await Job(expected, pool, _queue_name=settings.queue_name).result(timeout=5)
        assert result["tenant"] == scratch.slug and len(result["destroyed"]) == 1
        assert result["marked"] == 1 and result["objectsRemoved"] == 1
        reported = await progress.read(
            Redis.from_url(endpoints.redis_url), settings.redis_namespace, expected
        )
        assert reported is not None and reported["done"] == reported["total"] == 1
    finally:
        stale = [key async for key in pool.scan_iter(match=f"arq:*{settings.redis_namespace}*")]
        if stale:
            await pool.delete(*stale)
        await pool.aclose()
    assert not await scratch.exists("customer", ids["invalid"])
    (record,) = await scratch.records()
    assert record["origin"] == "job" and record["operator_clock"] is False


async def test_dangan_purge_run_lists_then_destroys(
    scratch: Scratch, objects: ObjectStore, settings: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    ids = await _scenario(scratch, objects)
    env = cli_env(settings, endpoints, tmp_path / "data")

    def dangan(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(DANGAN), "purge", "run", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    before = await _snapshot(scratch)
    listed = await asyncio.to_thread(dangan, "--tenant", scratch.slug, "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "(dry run)" in listed.stdout and "would be destroyed" in listed.stdout
    assert f"customer {ids['invalid']}" in listed.stdout and "status INVALID since" in listed.stdout
    assert f"customer {ids['idle']}" in listed.stdout and "no activity since" in listed.stdout
    assert await _snapshot(scratch) == before

    refused = await asyncio.to_thread(dangan, "--tenant", scratch.slug, "--now", "2030-01-01")
    assert refused.returncode == 2 and "time zone" in refused.stderr
    both = await asyncio.to_thread(dangan, "--all", "--tenant", scratch.slug)
    assert both.returncode == 2

    later = (now() + timedelta(days=1)).isoformat()
    done = await asyncio.to_thread(dangan, "--tenant", scratch.slug, "--now", later)
    assert done.returncode == 0, done.stderr
    assert "destruction record" in done.stdout and "1 record(s) were destroyed" in done.stdout
    assert not await scratch.exists("customer", ids["invalid"])
    (record,) = await scratch.records()
    assert record["origin"] == "cli" and record["operator"] == os_user()
    assert record["as_of"] == datetime.fromisoformat(later) and record["operator_clock"]
    (event,) = await scratch.events("purge.destroy")
    assert event["operation_type"] == "cli"
    assert event["variables"]["command"] == "dangan purge run"
    assert event["variables"]["asOf"] == datetime.fromisoformat(later).astimezone(UTC).isoformat()
