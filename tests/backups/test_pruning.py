"""Pruning a tenant's backups by the keep-policy: kept ones locked until their
keep-until, dropped ones removed (manifest first) only once S3's object lock lets go,
a crashed run's leftovers removed after a day, nothing of another tenant touched.

Locks here last seconds (S3 checks them against its own clock); the policy's clock is
the ``now`` handed to the prune."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from minio.error import S3Error

from dangan.audit.actions import ActionLog
from dangan.backups.manifest import backup_prefix, manifest_key
from dangan.backups.pruning import PruneBusy, prune_backups, prune_lock_key
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef
from dangan.workers import progress
from dangan.workers.backup_keeping import backup_upkeep
from dangan.workers.settings import build_worker
from tests.backups.fabricated import action_events, fabricate, put, record
from tests.support.tenants import drop_tenant

LOCK = timedelta(seconds=3)


def keeping(settings: Settings, daily: int, weekly: int = 0, monthly: int = 0) -> Settings:
    return settings.model_copy(
        update={
            "backup_keep_daily": daily,
            "backup_keep_weekly": weekly,
            "backup_keep_monthly": monthly,
        }
    )


async def nightly(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    days: int,
    *,
    locked_for: timedelta | None = None,
) -> list[str]:
    """One backup a night for ``days`` nights up to last night; their ids, oldest first."""
    ids = []
    now = datetime.now(UTC)
    for ago in range(days, 0, -1):
        at = now - timedelta(days=ago)
        ids.append(backup_id("scheduled", at))
        await fabricate(settings, store, tenant, ids[-1], at, locked_for=locked_for)
    return ids


async def lock_until(store: BackupStore, key: str, version_id: str | None) -> datetime | None:
    info = await store.objects.stat(key, version_id)
    assert info is not None
    return datetime.fromisoformat(info.locked_until) if info.locked_until else None


async def test_a_dropped_backup_waits_for_its_lock_then_goes_whole(
    settings: Settings, backups: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    ids = await nightly(settings, backups, tenant, 5, locked_for=LOCK)
    policy = keeping(settings, daily=3)
    oldest = backup_prefix(tenant.slug, ids[0])
    # S3 itself refuses: a version under a GOVERNANCE lock cannot be deleted.
    (data,) = await backups.objects.versions(oldest + "data")
    with pytest.raises(S3Error) as refused:
        await backups.objects.remove(data.key, data.version_id)
    assert refused.value.code == "AccessDenied"

    first = await prune_backups(policy, backups, tenant, datetime.now(UTC), log)

    assert [k.id for k in first.kept] == ids[:1:-1]  # the three newest, newest first
    assert first.removed == []
    assert [(w.backup, w.bucket) for w in first.waiting] == [(ids[0], "main"), (ids[1], "main")]
    assert all(w.locked_until and w.locked_until > datetime.now(UTC) for w in first.waiting)
    for waiting in ids[:2]:  # refused at the manifest: whole, and still listed
        assert len(await backups.objects.versions(backup_prefix(tenant.slug, waiting))) == 3
        assert await record(tenant, waiting) is not None
    # The kept ones are locked until their keep-until, in S3 and in the catalogue.
    assert first.locked == {k.id: k.until for k in first.kept}
    for keeper in first.kept:
        kept = await record(tenant, keeper.id)
        assert kept is not None and kept.locked_until == keeper.until
        for version in await backups.objects.versions(backup_prefix(tenant.slug, keeper.id)):
            assert await lock_until(backups, version.key, version.version_id) == keeper.until
    (event,) = await action_events(tenant, "backup.prune")
    assert event["operation_type"] == "job" and event["actor_kind"] == "system"
    assert event["variables"]["removed"] == [] and event["variables"]["waiting"] == ids[:2]
    assert sorted(event["variables"]["locked"]) == sorted(ids[2:])

    await asyncio.sleep(LOCK.total_seconds() + 0.5)
    second = await prune_backups(policy, backups, tenant, datetime.now(UTC), log)

    assert (second.removed, second.waiting, second.locked) == (ids[:2], [], {})
    for gone in ids[:2]:
        assert await backups.objects.versions(backup_prefix(tenant.slug, gone)) == []
        assert await record(tenant, gone) is None
    events = await action_events(tenant, "backup.prune")
    assert [e["variables"]["removed"] for e in events] == [[], ids[:2]]
    # Once more: nothing to do, nothing recorded.
    third = await prune_backups(policy, backups, tenant, datetime.now(UTC), log)
    assert not third.changed and [k.id for k in third.kept] == ids[:1:-1]
    assert len(await action_events(tenant, "backup.prune")) == 2


async def test_a_crashed_runs_objects_go_after_a_day_and_another_tenants_never(
    settings: Settings, backups: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    # A tenant whose slug starts with this one's: its keys share the prefix but for a "/".
    other = await create_tenant(tenant.slug + "x", "Prefix Neighbour Ltd")
    try:
        ids = await nightly(settings, backups, tenant, 2)
        crashed = backup_prefix(tenant.slug, "d20200101")
        await asyncio.to_thread(put, backups.objects, crashed + "data", b"half a backup")
        theirs = await nightly(settings, backups, other, 3)
        await asyncio.to_thread(put, backups.objects, backup_prefix(other.slug, "x") + "data", b"?")
        before = await backups.objects.versions(f"backups/{other.slug}/")
        now = datetime.now(UTC)
        policy = keeping(settings, daily=1)

        young = await prune_backups(policy, backups, tenant, now, log)
        assert young.orphans == [] and len(await backups.objects.versions(crashed)) == 1
        assert young.removed == ids[:1]

        aged = await prune_backups(policy, backups, tenant, now + timedelta(days=2), log)
        assert aged.orphans == ["d20200101"] and aged.removed == []
        assert await backups.objects.versions(crashed) == []

        # Nothing of the other tenant: objects, catalogue, audit trail.
        assert await backups.objects.versions(f"backups/{other.slug}/") == before
        assert all([await record(other, backup) for backup in theirs])
        assert await action_events(other, "backup.prune") == []
        assert len(await action_events(tenant, "backup.prune")) == 2
    finally:
        await drop_tenant(other.slug)


async def test_a_backup_missing_from_the_catalogue_is_adopted_an_altered_one_is_not(
    settings: Settings, backups: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    now = datetime.now(UTC)
    found = await fabricate(
        settings, backups, tenant, "d20261101", now - timedelta(days=2), catalogued=False
    )
    altered = await fabricate(
        settings, backups, tenant, "d20261102", now - timedelta(days=1), catalogued=False
    )
    body = orjson.loads(altered.encode())
    body["objects"]["data"]["stored_bytes"] += 1
    key = manifest_key(tenant.slug, altered.backup_id)
    await backups.objects.put_bytes(key, orjson.dumps(body), "application/json")

    report = await prune_backups(settings, backups, tenant, now + timedelta(days=2), log)

    assert report.adopted == [found.backup_id]
    assert [k.id for k in report.kept] == [found.backup_id]
    assert report.problems == [
        f"d20261102: not adopted: {key}: the manifest was altered (its MAC does not match)"
    ]
    assert await record(tenant, altered.backup_id) is None
    # Not removed either: a manifest is there, it is no crashed run's leftover.
    assert len(await backups.objects.versions(backup_prefix(tenant.slug, "d20261102"))) == 4
    (event,) = await action_events(tenant, "backup.prune")
    assert event["variables"]["adopted"] == [found.backup_id]


async def test_a_lock_is_lengthened_never_shortened_and_strays_go(
    settings: Settings, backups: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    (backup,) = await nightly(settings, backups, tenant, 1, locked_for=LOCK)
    prefix = backup_prefix(tenant.slug, backup)
    (data,) = await backups.objects.versions(prefix + "data")
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)
    await backups.objects.extend_lock(data.key, data.version_id, mode="GOVERNANCE", until=far)
    # An earlier attempt's version of the attachments object, which the manifest does
    # not name (written after here, but old by the prune's clock).
    stray = await asyncio.to_thread(put, backups.objects, prefix + "attachments", b"older try")
    now = datetime.now(UTC)

    report = await prune_backups(settings, backups, tenant, now + timedelta(days=2), log)

    (keeper,) = report.kept
    assert report.locked == {backup: keeper.until} and keeper.until < far
    assert await lock_until(backups, data.key, data.version_id) == far  # not shortened
    manifest = await backups.objects.versions(prefix + "manifest.json")
    assert await lock_until(backups, manifest[0].key, manifest[0].version_id) == keeper.until
    assert report.strays == 1
    left = await backups.objects.versions(prefix)
    assert stray not in {v.version_id for v in left} and len(left) == 3


async def test_a_dry_run_changes_nothing(
    settings: Settings, backups: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    ids = await nightly(settings, backups, tenant, 4)
    before = await backups.objects.versions(f"backups/{tenant.slug}/")

    report = await prune_backups(
        keeping(settings, daily=2), backups, tenant, datetime.now(UTC), log, dry_run=True
    )

    assert (
        report.dry_run and report.removed == ids[:2] and [k.id for k in report.kept] == ids[:1:-1]
    )
    assert await backups.objects.versions(f"backups/{tenant.slug}/") == before
    assert all([await record(tenant, backup) for backup in ids])
    assert await action_events(tenant, "backup.prune") == []


async def test_one_prune_at_a_time_per_tenant(
    settings: Settings,
    endpoints: Endpoints,
    backups: BackupStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    holder = await asyncpg.connect(endpoints.database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", prune_lock_key(tenant))
        with pytest.raises(PruneBusy, match="already running"):
            await prune_backups(settings, backups, tenant, datetime.now(UTC), log)
    finally:
        await holder.close()
    assert not (await prune_backups(settings, backups, tenant, datetime.now(UTC), log)).changed


async def test_the_nightly_upkeep_prunes_each_tenant_in_a_job_of_its_own(
    settings: Settings, endpoints: Endpoints, backups: BackupStore, tenant: TenantRef
) -> None:
    ids = await nightly(settings, backups, tenant, 9)  # unlocked: removable at once
    settings = keeping(settings, daily=7)
    worker = build_worker(settings, endpoints, connect_database=False, burst=True, poll_delay=0.05)
    (cron,) = [job for job in worker.cron_jobs if job.coroutine is backup_upkeep]
    assert cron.name == f"cron:{settings.redis_namespace}:backup_upkeep" and cron.unique
    # Three hours after the backups (00:30 UTC by default).
    assert (cron.hour, cron.minute) == ({3}, {30})
    pool = await create_pool(
        RedisSettings.from_dsn(endpoints.redis_url), default_queue_name=settings.queue_name
    )
    try:
        ctx = {"redis": pool, "settings": settings}
        queued = await backup_upkeep(ctx)
        assert queued == await backup_upkeep(ctx)  # one job per tenant and day
        assert {"alpha", "beta", "gamma", tenant.slug} <= queued.keys()
        try:
            await worker.main()
        finally:
            await worker.close()
        result = await Job(queued[tenant.slug], pool, _queue_name=settings.queue_name).result(
            timeout=5
        )
        assert result["tenant"] == tenant.slug
        assert result["removed"] == ids[:2] and result["kept"] == ids[:1:-1]
        assert result["replicated"] == [] and result["problems"] == []
        done = await progress.read(pool, settings.redis_namespace, queued[tenant.slug])
        assert done is not None and (done["done"], done["total"]) == (2, 2)
    finally:
        stale = [key async for key in pool.scan_iter(match=f"arq:*{settings.redis_namespace}*")]
        stale += [
            key async for key in pool.scan_iter(match=f"{settings.redis_namespace}:progress:*")
        ]
        if stale:
            await pool.delete(*stale)
        await pool.aclose()
    assert [await record(tenant, backup) is None for backup in ids] == [True, True] + [False] * 7
