"""Backup jobs through real Redis, in-process workers in burst mode: one job and one
backup per slot however often it is asked for, progress and status, retries of transient
failures, a permanent failure recorded and alerted at once, the nightly cron."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import retry_key_prefix
from arq.jobs import Job, JobStatus
from arq.worker import Worker

from dangan.alarms.alerts import AlertFilter, list_alerts
from dangan.alarms.webhook import verify_signature
from dangan.backups.catalogue import BackupRun, find_run, list_backups
from dangan.backups.manifest import backup_prefix, manifest_key
from dangan.backups.reader import verify_backup
from dangan.backups.schedule import Schedule, default_schedule, set_schedule, tenant_schedule
from dangan.backups.slots import backup_id, job_id
from dangan.backups.status import backup_status, run_state, run_status
from dangan.backups.store import BackupStore
from dangan.backups.writer import lock_key
from dangan.devstack import Endpoints
from dangan.services.errors import BadUserInput, Forbidden
from dangan.services.people import caller_for, create_user
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.backups import enqueue_backup, queue_due_backups, retry_delay
from dangan.workers.progress import read
from dangan.workers.settings import build_alarm_worker, build_backup_worker
from tests.alarms.conftest import Receiver
from tests.backups.conftest import fill
from tests.backups.holding import last_table_held
from tests.support.world import World


@dataclass
class Jobs:
    """This test's own namespace (queues, job ids, progress) on the run's Redis."""

    settings: Settings
    endpoints: Endpoints
    queue: ArqRedis

    def with_(self, **changes: Any) -> Settings:
        return self.settings.model_copy(update=changes)

    async def run_backups(self, **changes: Any) -> Worker:
        worker = build_backup_worker(
            self.with_(**changes),
            self.endpoints,
            connect_database=False,
            burst=True,
            poll_delay=0.05,
        )
        return await _burst(worker)

    async def run_alarms(self, **changes: Any) -> Worker:
        worker = build_alarm_worker(
            self.with_(**changes),
            self.endpoints,
            connect_database=False,
            burst=True,
            poll_delay=0.05,
            cron_jobs=[],
        )
        return await _burst(worker)

    def job(self, ident: str) -> Job:
        return Job(ident, self.queue, _queue_name=self.settings.backup_queue_name)


async def _burst(worker: Worker) -> Worker:
    try:
        await asyncio.wait_for(worker.main(), timeout=120)
    finally:
        await worker.close()
    return worker


@pytest.fixture
async def jobs(settings: Settings, endpoints: Endpoints) -> AsyncIterator[Jobs]:
    namespace = f"{settings.redis_namespace}-bj{uuid.uuid4().hex[:6]}"
    quick = settings.model_copy(
        update={
            "redis_namespace": namespace,
            "backup_retry_seconds": 0.1,
            "backup_max_tries": 3,
            "alarm_webhook_allow_private": True,
            "alarm_webhook_backoff_seconds": 0.1,
            "alarm_webhook_max_tries": 2,
        }
    )
    pool = await create_pool(RedisSettings.from_dsn(endpoints.redis_url))
    yield Jobs(quick, endpoints, pool)
    stale = [k async for k in pool.scan_iter(match=f"*{namespace}*")]
    if stale:
        await pool.delete(*stale)
    await pool.aclose()


@pytest.fixture
def hooks() -> Iterator[tuple[Receiver, Receiver]]:
    """Two webhook receivers: the tenant's own and the operators'."""
    pair = (Receiver(), Receiver())
    for receiver in pair:
        receiver.thread.start()
    yield pair
    for receiver in pair:
        receiver.server.shutdown()
        receiver.server.server_close()


async def test_asking_twice_is_one_job_and_one_backup_with_its_progress(
    jobs: Jobs, tenant: TenantRef, objects: ObjectStore, backups: BackupStore, world: World
) -> None:
    await fill(tenant, objects, customers=3, files=1)
    now = datetime.now(UTC)
    first = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", now)
    again = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", now)
    assert first.queued and not again.queued
    assert first.backup_id == again.backup_id == backup_id("manual", now)
    assert first.job_id == job_id(jobs.settings.redis_namespace, tenant.slug, first.backup_id)
    waiting = await run_status(jobs.queue, jobs.settings, tenant, first.backup_id)
    assert waiting is not None and (waiting.state, waiting.kind) == ("queued", "manual")

    worker = await jobs.run_backups()

    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 0, 0)
    result = await jobs.job(first.job_id).result(timeout=5)
    assert (result["backup"], result["made"]) == (first.backup_id, True)
    [listed] = await list_backups(tenant.id)
    assert listed.id == first.backup_id and result["rows"] == listed.rows
    assert (await verify_backup(jobs.settings, backups, tenant.slug, listed.id)).ok
    status = await backup_status(jobs.queue, jobs.settings, tenant)
    assert status.latest == listed
    [run] = status.runs
    assert (run.state, run.attempts, run.tables_done, run.rows) == (
        "complete",
        1,
        listed.tables,
        listed.rows,
    )
    progress = await read(jobs.queue, jobs.settings.redis_namespace, first.job_id)
    assert progress is not None
    assert (progress["state"], progress["stage"], progress["rows"]) == (
        "complete",
        "made",
        listed.rows,
    )
    # The slot stays taken while its result is kept; past that, run_backup finds the
    # backup in the catalogue (tests/backups/test_backup.py).
    later = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", now)
    assert not later.queued and later.job_id == first.job_id
    # Another tenant's status holds its own runs and backups only.
    alpha = world["alpha"].ref
    other = await backup_status(jobs.queue, jobs.settings, alpha)
    assert {b.tenant for b in other.backups} <= {"alpha"}
    for shown in other.runs:
        theirs = await find_run(alpha.id, shown.backup_id)
        assert theirs is not None and shown.attempts == theirs.attempts


async def _set_webhook(tenant: TenantRef, url: str, secret: str) -> None:
    async def change() -> None:
        await raw_connection().execute(
            "UPDATE alarm_setting SET webhook_url = $1, webhook_secret = $2", url, secret
        )

    await run_in_tenant(tenant, change)


async def _tenant_rows(tenant: TenantRef, sql: str, *args: Any) -> list[Any]:
    async def fetch() -> list[Any]:
        return list(await raw_connection().fetch(sql, *args))

    return await run_in_tenant(tenant, fetch)


async def test_a_permanent_error_fails_at_once_with_its_reason_and_an_alert_to_both_webhooks(
    jobs: Jobs,
    tenant: TenantRef,
    objects: ObjectStore,
    backups: BackupStore,
    world: World,
    hooks: tuple[Receiver, Receiver],
) -> None:
    own, operators = hooks
    await fill(tenant, objects, customers=2, files=0)
    await _set_webhook(tenant, own.url, "dgwh_tenant-secret")
    platform = {"alarm_webhook_url": operators.url, "alarm_webhook_secret": "operators-secret"}
    versions = await _tenant_rows(tenant, "SELECT version, name FROM schema_migration")
    await _tenant_rows(tenant, "DELETE FROM schema_migration RETURNING version")
    now = datetime.now(UTC)
    asked = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", now)

    worker = await jobs.run_backups(**platform)

    # No retry could give the schema a version: one try, failed for good.
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (0, 1, 0)
    info = await jobs.job(asked.job_id).result_info()
    reason = f"{tenant.slug}'s schema has no recorded version"
    assert info is not None and not info.success and info.job_try == 1
    assert reason in str(info.result)
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.attempts, run.error) == ("failed", 1, reason)
    status = await run_status(jobs.queue, jobs.settings, tenant, asked.backup_id)
    assert status is not None and (status.state, status.error) == ("failed", reason)
    # Its data object was written; without a manifest it is no backup and is not listed.
    prefix = backup_prefix(tenant.slug, asked.backup_id)
    assert await backups.objects.stat(prefix + "data") is not None
    assert await backups.objects.stat(manifest_key(tenant.slug, asked.backup_id)) is None
    assert await list_backups(tenant.id) == []

    [alert] = await _tenant_rows(tenant, "SELECT * FROM alert WHERE rule = 'backup_failed'")
    summary = f"the manual backup {asked.backup_id} failed after 1 try: {reason}"
    assert (alert["actor_kind"], alert["actor_key"], alert["severity"]) == (
        "system",
        f"backup:{asked.backup_id}",
        "high",
    )
    assert (alert["summary"], alert["status"], alert["suspended"]) == (summary, "open", False)
    evidence = orjson.loads(alert["evidence"])
    assert (evidence["backup"], evidence["tries"], evidence["reason"]) == (
        asked.backup_id,
        1,
        reason,
    )
    # In the trail: the failed backup.run, then the alert's opening, in one transaction.
    events = await _tenant_rows(
        tenant,
        "SELECT seq, actor_kind, operation_name, error_codes, variables FROM audit_event"
        " ORDER BY seq DESC LIMIT 2",
    )
    opening, failed = events
    assert (failed["operation_name"], failed["error_codes"], failed["actor_kind"]) == (
        "backup.run",
        ["CONFLICT"],
        "system",
    )
    assert opening["operation_name"] == "alert.open"
    assert alert["first_seq"] == failed["seq"] and opening["seq"] == failed["seq"] + 1

    # The tenant's administrators and auditors read it; a salesperson may not.
    admin = await create_user(tenant, f"boss@{uuid.uuid4().hex[:6]}.test", ["auditor"])
    sales = await create_user(tenant, f"sales@{uuid.uuid4().hex[:6]}.test", ["sales"])
    seen = await run_in_tenant(
        tenant,
        lambda: list_alerts(caller_for(tenant, admin), AlertFilter(rule="backup_failed")),
    )
    assert [a["id"] for a in seen] == [alert["id"]]
    with pytest.raises(Forbidden):
        await run_in_tenant(tenant, lambda: list_alerts(caller_for(tenant, sales), AlertFilter()))
    # … and no other tenant has it.
    elsewhere = await _tenant_rows(
        world["alpha"].ref, "SELECT id FROM alert WHERE actor_key = $1", alert["actor_key"]
    )
    assert elsewhere == []

    await jobs.run_alarms(**platform)

    for receiver, secret in ((own, "dgwh_tenant-secret"), (operators, "operators-secret")):
        [got] = receiver.received
        stamp = got.headers["X-Dangan-Timestamp"]
        assert verify_signature(secret, stamp, got.body, got.headers["X-Dangan-Signature"])
        body = orjson.loads(got.body)
        assert (body["event"], body["tenant"]) == ("alert.opened", tenant.slug)
        assert (body["alert"]["rule"], body["alert"]["summary"]) == ("backup_failed", summary)
    tenant_attempts = await _tenant_rows(tenant, "SELECT url, outcome FROM alert_delivery")
    operator_attempts = await _tenant_rows(
        tenant, "SELECT url, outcome FROM alert_platform_delivery"
    )
    assert [a["outcome"] for a in tenant_attempts] == ["delivered"]
    assert [a["outcome"] for a in operator_attempts] == ["delivered"]
    assert tenant_attempts[0]["url"] != operator_attempts[0]["url"]

    # Mended, the same slot may be asked for again: its failed result makes way.
    async def put_back() -> None:
        await raw_connection().executemany(
            "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
            [(v["version"], v["name"]) for v in versions],
        )

    await run_in_tenant(tenant, put_back)
    retried = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", now)
    assert retried.queued and retried.backup_id == asked.backup_id
    worker = await jobs.run_backups(**platform)
    assert worker.jobs_complete == 1
    [listed] = await list_backups(tenant.id)
    assert listed.id == asked.backup_id
    assert (await verify_backup(jobs.settings, backups, tenant.slug, listed.id)).ok
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.error) == ("complete", None)


async def test_another_backup_running_is_waited_for_with_backoff(
    jobs: Jobs, tenant: TenantRef, objects: ObjectStore, endpoints: Endpoints
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    holder = await asyncpg.connect(endpoints.database_url)
    await holder.execute("SELECT pg_advisory_lock($1)", lock_key(tenant))  # "another run"
    asked = await enqueue_backup(jobs.queue, jobs.settings, tenant, "scheduled", datetime.now(UTC))
    running = asyncio.create_task(jobs.run_backups(backup_retry_seconds=1.0))
    try:
        status = None
        for _ in range(200):
            status = await run_status(jobs.queue, jobs.settings, tenant, asked.backup_id)
            if status is not None and status.state == "retrying":
                break
            await asyncio.sleep(0.02)
        assert status is not None and status.state == "retrying", status
        assert status.error == f"a backup of {tenant.slug} is already running"
        assert status.retry_at is not None and status.retry_at > datetime.now(UTC)
        waiting = await find_run(tenant.id, asked.backup_id)
        assert waiting is not None and (waiting.status, waiting.error) == ("failed", status.error)
    finally:
        await holder.close()  # the other run ends
    worker = await running
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 1, 0)
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.attempts) == ("complete", 2)
    assert [b.id for b in await list_backups(tenant.id)] == [asked.backup_id]


async def test_a_backup_past_its_timeout_fails_for_good(
    jobs: Jobs, tenant: TenantRef, objects: ObjectStore, endpoints: Endpoints
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    asked = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", datetime.now(UTC))
    async with last_table_held(endpoints, tenant):
        worker = await jobs.run_backups(backup_timeout_seconds=2)
    assert (worker.jobs_failed, worker.jobs_retried) == (1, 0)
    run = await find_run(tenant.id, asked.backup_id)
    reason = "it took longer than 2 s (DANGAN_BACKUP_TIMEOUT_SECONDS)"
    assert run is not None and (run.status, run.error) == ("failed", reason)
    assert await list_backups(tenant.id) == []
    [alert] = await _tenant_rows(tenant, "SELECT summary FROM alert WHERE rule = 'backup_failed'")
    assert alert["summary"].endswith(reason)


async def test_a_last_try_cut_off_is_recorded_as_a_failure_on_the_next_delivery(
    jobs: Jobs, tenant: TenantRef, objects: ObjectStore
) -> None:
    await fill(tenant, objects, customers=1, files=0)
    asked = await enqueue_backup(jobs.queue, jobs.settings, tenant, "manual", datetime.now(UTC))
    # arq's count of tries, as a worker killed during the last one leaves it.
    await jobs.queue.set(retry_key_prefix + asked.job_id, jobs.settings.backup_max_tries)

    worker = await jobs.run_backups()

    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)
    reason = "its last try stopped midway (the worker running it was lost)"
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.error) == ("failed", reason)
    [alert] = await _tenant_rows(tenant, "SELECT summary FROM alert WHERE rule = 'backup_failed'")
    assert alert["summary"] == f"the manual backup {asked.backup_id} failed after 3 tries: {reason}"
    assert await list_backups(tenant.id) == []


async def test_each_tenant_is_queued_once_a_day_at_its_own_time(jobs: Jobs, world: World) -> None:
    tenants = [t for t in await list_tenants() if t.status != "provisioning"]
    alpha, beta = world["alpha"].ref, world["beta"].ref
    day = datetime(2031, 5, 6, tzinfo=UTC)  # a day no other test backs anything up on
    slot = backup_id("scheduled", day)
    await set_schedule(alpha, hour=6, minute=15)
    await set_schedule(beta, hour=None, minute=0, enabled=False)
    try:
        early = await queue_due_backups(jobs.queue, jobs.settings, day.replace(hour=0, minute=29))
        default = await queue_due_backups(jobs.queue, jobs.settings, day.replace(hour=0, minute=30))
        again = await queue_due_backups(jobs.queue, jobs.settings, day.replace(hour=5, minute=0))
        own = await queue_due_backups(jobs.queue, jobs.settings, day.replace(hour=6, minute=20))
    finally:
        await set_schedule(alpha, hour=None, minute=0)
        await set_schedule(beta, hour=None, minute=0)

    assert early == {} and again == {}
    others = {t.slug for t in tenants} - {alpha.slug, beta.slug}
    assert default == dict.fromkeys(others, slot)
    assert own == {alpha.slug: slot}  # beta's scheduled backups are off
    for tenant in [t for t in tenants if t.slug != beta.slug]:
        ident = job_id(jobs.settings.redis_namespace, tenant.slug, slot)
        assert await jobs.job(ident).status() == JobStatus.queued
        info = await jobs.job(ident).info()
        assert info is not None and info.args == (tenant.slug, slot, "scheduled")
    assert (await tenant_schedule(jobs.settings, alpha)).own is False


def test_a_schedule_says_what_it_is(settings: Settings) -> None:
    assert default_schedule(settings).describe() == "daily at 00:30 UTC (the default)"
    assert Schedule(6, 5, True, True).describe() == "daily at 06:05 UTC (its own)"
    assert Schedule(0, 0, False, True).describe() == "off (on-demand backups only)"


async def test_a_bad_hour_is_named(world: World) -> None:
    with pytest.raises(BadUserInput, match="hour must be 0-23") as raised:
        await set_schedule(world["alpha"].ref, hour=24, minute=0)
    assert raised.value.field == "hour"


def _run(status: str, updated: datetime) -> BackupRun:
    return BackupRun(1, "d20261123", "scheduled", status, 1, updated, updated, 3, 9, 10, 100, None)


def test_a_runs_state_comes_from_its_row_and_its_job() -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    fresh, stale = now - timedelta(minutes=5), now - timedelta(hours=3)
    after = timedelta(hours=2)

    def state(run: BackupRun | None, job: JobStatus) -> str | None:
        return run_state(run, job, now=now, stale_after=after)

    assert state(None, JobStatus.not_found) is None
    assert state(None, JobStatus.queued) == "queued"
    assert state(None, JobStatus.deferred) == "retrying"  # failed before its run began
    assert state(_run("running", fresh), JobStatus.in_progress) == "running"
    assert state(_run("running", fresh), JobStatus.not_found) == "running"  # a command's
    # No sign of life for longer than any try may last: its process died, whatever
    # arq's in-progress mark (which outlives a kill -9) still says.
    assert state(_run("running", stale), JobStatus.in_progress) == "interrupted"
    assert state(_run("running", stale), JobStatus.not_found) == "interrupted"
    assert state(_run("failed", fresh), JobStatus.deferred) == "retrying"
    assert state(_run("failed", fresh), JobStatus.queued) == "retrying"
    assert state(_run("failed", fresh), JobStatus.complete) == "failed"
    assert state(_run("complete", stale), JobStatus.complete) == "complete"


def test_retries_wait_four_times_longer_each_time_up_to_the_cap(settings: Settings) -> None:
    default = settings.model_copy(
        update={"backup_retry_seconds": 5.0, "backup_retry_max_seconds": 600.0}
    )
    assert [retry_delay(default, n) for n in range(1, 7)] == [5, 20, 80, 320, 600, 600]
