"""Retention: events older than the retention leave only up to an old signed checkpoint,
the chain then verifies from its anchor, the checkpoints before the anchor go once
their lock has run out — and deleting events or moving the anchor any other way is
found by ``verify``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from pydantic import ValidationError

from dangan.audit.actions import ActionLog
from dangan.audit.anchor import read_anchor, set_retention_days
from dangan.audit.checkpoints import (
    CheckpointStore,
    checkpoint_key,
    list_checkpoints,
)
from dangan.audit.retention import PruneReport, prune_tenant
from dangan.audit.verify import verify_tenant
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.audit import audit_retention
from dangan.workers.settings import build_worker
from tests.audit.aged import aged_chain, append_aged, checkpoint_at, days_ago
from tests.audit.events import events_of
from tests.audit.test_chain import _tamper


@pytest.fixture
def log(settings: Settings) -> ActionLog:
    return ActionLog(settings.secret_key, "job")


async def _prune(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog, **options: Any
) -> PruneReport:
    return await prune_tenant(tenant, store, 180, log, **options)


async def _seqs(tenant: TenantRef) -> list[int]:
    rows = await run_in_tenant(
        tenant, lambda: raw_connection().fetch("SELECT seq FROM audit_event ORDER BY seq")
    )
    return [row["seq"] for row in rows]


async def _prune_events(tenant: TenantRef) -> list[dict[str, Any]]:
    rows = await run_in_tenant(
        tenant,
        lambda: raw_connection().fetch(
            "SELECT request_id FROM audit_event WHERE 'audit.prune' = ANY(actions) ORDER BY seq"
        ),
    )
    return [event for row in rows for event in await events_of(tenant, row["request_id"])]


async def test_a_prune_deletes_what_an_old_checkpoint_covers_and_verify_starts_there(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)
    hashes = await run_in_tenant(
        tenant, lambda: raw_connection().fetch("SELECT seq, hash FROM audit_event ORDER BY seq")
    )

    report = await _prune(tenant, store, log)

    # Checkpoints 4 and 8 are older than 180 days, 12 is not: events 1–8 go.
    assert (report.anchor_before, report.anchor_after, report.events) == (0, 8, 8)
    assert report.refused is None and not report.dry_run
    assert await _seqs(tenant) == list(range(9, 16))  # 15: the prune's own event
    anchor = await run_in_tenant(tenant, read_anchor)
    assert (anchor.seq, anchor.hash) == (8, hashes[7]["hash"])
    (event,) = await _prune_events(tenant)
    assert event["seq"] == 15 and event["operation_type"] == "job"
    assert (event["actor_kind"], event["outcome"]) == ("system", "ok")
    details = event["variables"]
    assert (details["from"], details["through"], details["events"]) == (1, 8, 8)
    assert details["retentionDays"] == 180
    verified = await verify_tenant(tenant, store)
    assert verified.ok and verified.starts_at == 8 and verified.events == 7
    assert verified.head_seq == 15
    # The checkpoint before the anchor had run out of lock: removed. The anchor's own is
    # kept and locked again, for a week from now (renewed by each prune).
    assert report.checkpoints_removed == 1 and report.checkpoints_locked == 0
    assert await store.objects.versions(checkpoint_key(tenant.slug, 4)) == []
    info = await store.objects.stat(checkpoint_key(tenant.slug, 8))
    assert info is not None and info.locked_until is not None
    until = datetime.fromisoformat(info.locked_until.replace("Z", "+00:00"))
    assert abs(until - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)

    again = await _prune(tenant, store, log)  # nothing older is left to go

    assert (again.anchor_after, again.events, again.refused) == (8, 0, None)
    assert len(await _prune_events(tenant)) == 1


async def test_a_prune_goes_from_checkpoint_to_checkpoint_in_batches(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)
    progress: list[tuple[int, int]] = []

    async def record(done: int, total: int) -> None:
        progress.append((done, total))

    report = await _prune(tenant, store, log, batch_events=3, on_progress=record)

    assert (report.anchor_after, report.events) == (8, 8)
    assert progress == [(4, 8), (8, 8)]
    ranges = [
        (e["variables"]["from"], e["variables"]["through"]) for e in await _prune_events(tenant)
    ]
    assert ranges == [(1, 4), (5, 8)]  # one transaction, one event, per stretch
    assert (await verify_tenant(tenant, store)).ok


async def test_a_longer_retention_of_the_tenant_keeps_more(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)
    await run_in_tenant(tenant, lambda: set_retention_days(365))

    report = await _prune(tenant, store, log)

    assert (report.retention_days, report.anchor_after, report.events) == (365, 4, 4)
    assert (await verify_tenant(tenant, store)).starts_at == 4


async def test_a_dry_run_changes_nothing(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)

    report = await _prune(tenant, store, log, dry_run=True)

    assert (report.anchor_after, report.events, report.dry_run) == (8, 8, True)
    assert report.checkpoints_removed == 1  # to look at: the one before the anchor
    assert await _seqs(tenant) == list(range(1, 15))
    assert (await run_in_tenant(tenant, read_anchor)).seq == 0
    assert len(await store.objects.versions(checkpoint_key(tenant.slug, 4))) == 1
    assert await _prune_events(tenant) == []


async def test_a_checkpoint_still_locked_stays_and_is_no_longer_read(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    long_lock = dataclasses.replace(store, retention_days=1000)
    await append_aged(tenant, 1, 4, days_ago(400))
    await checkpoint_at(tenant, long_lock, days_ago(400))  # locked 1,000 days
    await append_aged(tenant, 5, 8, days_ago(300))
    await checkpoint_at(tenant, long_lock, days_ago(300))

    report = await _prune(tenant, store, log)

    assert (report.anchor_after, report.checkpoints_removed, report.checkpoints_locked) == (
        8,
        0,
        1,
    )
    key = checkpoint_key(tenant.slug, 4)
    assert len(await store.objects.versions(key)) == 1
    # The anchor's checkpoint, locked longer than a prune would lock it: not shortened.
    info = await store.objects.stat(checkpoint_key(tenant.slug, 8))
    assert info is not None and info.locked_until is not None
    until = datetime.fromisoformat(info.locked_until.replace("Z", "+00:00"))
    assert until > datetime.now(UTC) + timedelta(days=600)
    # Verify reads checkpoints from the anchor on: one tampered with before it (here
    # overwritten) vouches for nothing kept and is not read.
    await store.objects.put_bytes(key, b"{}", "application/json")
    assert [c.seq for c in await list_checkpoints(tenant, store, from_seq=8)] == [8]
    assert (await verify_tenant(tenant, store)).ok


async def test_old_events_deleted_in_sql_without_a_checkpoint_are_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    await aged_chain(tenant, store)

    await _tamper(tenant, "DELETE FROM audit_event WHERE seq <= 3")

    report = await verify_tenant(tenant, store)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (1, "missing")
    assert report.broken.message == (
        "event(s) 1–3 are missing (deleted from the start of the chain, without moving the"
        " anchor to a checkpoint)"
    )


async def test_an_anchor_moved_in_sql_without_a_checkpoint_is_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    await aged_chain(tenant, store)

    await _tamper(
        tenant,
        "DELETE FROM audit_event WHERE seq <= 6",
        "UPDATE audit_anchor SET seq = 6, hash = (SELECT prev_hash FROM audit_event WHERE seq = 7)",
    )

    report = await verify_tenant(tenant, store)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (6, "anchor")
    assert "no checkpoint in S3 vouches for it" in report.broken.message
    assert (report.starts_at, report.events) == (6, 0)


async def test_a_forged_anchor_is_found(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)
    await _prune(tenant, store, log)
    # The first kept event made to carry a forged anchor's hash, its own re-hashed.
    forged = "f" * 64
    await _tamper(
        tenant,
        f"UPDATE audit_anchor SET hash = '{forged}'",
        f"UPDATE audit_event SET prev_hash = '{forged}' WHERE seq = 9",
        "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers),"
        " 'hex')) WHERE seq = 9",
    )

    report = await verify_tenant(tenant, store)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (8, "anchor")
    assert "the anchor's hash is not that of checkpoint 8" in report.broken.message


async def test_events_younger_than_six_months_pruned_by_hand_are_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    """Even up to a genuine checkpoint, with the anchor set to match: too young to go."""
    await aged_chain(tenant, store)

    await _tamper(
        tenant,
        "UPDATE audit_anchor SET seq = 12, hash = (SELECT hash FROM audit_event WHERE seq = 12)",
        "DELETE FROM audit_event WHERE seq <= 12",
    )

    report = await verify_tenant(tenant, store)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (12, "anchor")
    assert "younger than 180 days" in report.broken.message


async def test_a_prune_never_deletes_the_evidence_of_tampering(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> None:
    await aged_chain(tenant, store)
    await _tamper(tenant, "UPDATE audit_event SET actor_id = 99 WHERE seq = 6")

    report = await _prune(tenant, store, log)

    # The stretch to checkpoint 4 is sound and goes; the one to 8 holds the edit: kept.
    assert (report.anchor_after, report.events) == (4, 4)
    assert report.refused is not None
    assert (report.refused.seq, report.refused.problem) == (6, "edited")
    assert await _seqs(tenant) == [*range(5, 15), 15, 16]
    pruned, refused = await _prune_events(tenant)
    assert (pruned["outcome"], refused["outcome"]) == ("ok", "error")
    assert refused["error_codes"] == ["CHAIN_BROKEN"]
    assert refused["variables"]["stoppedAt"] == 6
    broken = (await verify_tenant(tenant, store)).broken
    assert broken is not None and (broken.seq, broken.problem) == (6, "edited")


async def test_retention_below_six_months_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(audit_retention_days=179)
    assert "DANGAN_AUDIT_RETENTION_DAYS must be at least 180" in str(refused.value)
    assert Settings(audit_retention_days=400).audit_retention_days == 400
    assert Settings().audit_retention_days == 180


async def test_the_daily_cron_prunes_each_tenant_in_a_job_of_its_own(
    tenant: TenantRef,
    store: CheckpointStore,
    settings: Settings,
    endpoints: Endpoints,
) -> None:
    await aged_chain(tenant, store)
    worker = build_worker(settings, endpoints, connect_database=False, burst=True, poll_delay=0.05)
    (cron,) = [job for job in worker.cron_jobs if job.coroutine is audit_retention]
    assert cron.name == f"cron:{settings.redis_namespace}:audit_retention" and cron.unique
    assert (cron.hour, cron.minute) == ({3}, {45})
    pool = await create_pool(
        RedisSettings.from_dsn(endpoints.redis_url), default_queue_name=settings.queue_name
    )
    try:
        ctx = {"redis": pool, "settings": settings}
        queued = await audit_retention(ctx)
        assert queued == await audit_retention(ctx)  # the same ids: one job per tenant and day
        assert {"alpha", "beta", "gamma", tenant.slug} <= queued.keys()
        try:
            await worker.main()
        finally:
            await worker.close()
        job = Job(queued[tenant.slug], pool, _queue_name=settings.queue_name)
        result = await job.result(timeout=5)
        assert (result["tenant"], result["anchor_after"], result["events"]) == (tenant.slug, 8, 8)
    finally:
        stale = [key async for key in pool.scan_iter(match=f"arq:*{settings.redis_namespace}*")]
        if stale:
            await pool.delete(*stale)
        await pool.aclose()
    assert (await run_in_tenant(tenant, read_anchor)).seq == 8
    (event,) = await _prune_events(tenant)
    assert event["operation_type"] == "job"
    assert (await verify_tenant(tenant, store)).ok
