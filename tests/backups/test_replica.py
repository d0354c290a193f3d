"""The replica: every finished backup copied to a second S3 endpoint (here a second
bucket of the same moto server, reached through a client built from the replica
settings), manifest last, locked like the original, complete on its own; a failed copy
never fails the backup and is made by the next run; pruning reaches the copies."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from dangan.audit.actions import ActionLog
from dangan.backups.manifest import backup_prefix, decode_manifest, manifest_key
from dangan.backups.pruning import prune_backups
from dangan.backups.reader import open_backup, verify_backup
from dangan.backups.replica import replicate, replicate_pending
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore, open_backup_store, replica_client
from dangan.backups.writer import run_backup
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import TenantRef
from dangan.workers import progress
from dangan.workers.backup_keeping import keep_tenant_backups
from tests.backups.conftest import fill
from tests.backups.fabricated import action_events, fabricate, put, record

LOCK = timedelta(seconds=3)


@pytest.fixture
async def mirrored(settings: Settings, endpoints: Endpoints) -> AsyncIterator[BackupStore]:
    """The backup store with a replica: the replica settings point at the test S3 with
    a bucket of their own."""
    replicated = settings.model_copy(
        update={
            "backup_replica_endpoint": endpoints.s3_endpoint,
            "backup_replica_access_key": endpoints.s3_access_key,
            "backup_replica_secret_key": endpoints.s3_secret_key,
            "backup_replica_secure": endpoints.s3_secure,
            "backup_replica_bucket": f"{settings.s3_bucket}-replica",
        }
    )
    client = replica_client(replicated)
    assert client is not None
    store = await open_backup_store(s3_client(endpoints), replicated, client)
    assert store.replica is not None and store.replica.bucket == f"{settings.s3_bucket}-replica"
    assert store.replica_lock_mode == "GOVERNANCE"
    yield store


def on_replica(store: BackupStore) -> BackupStore:
    """The replica bucket as a backup store of its own (as a restore from it would be)."""
    assert store.replica is not None
    return BackupStore(store.replica, store.replica_lock_mode, store.lock_days)


async def content(objects: ObjectStore, prefix: str) -> bytes:
    return b"".join([await objects.get_bytes(v.key) for v in await objects.versions(prefix)])


async def test_a_backup_is_copied_to_the_replica_where_it_verifies_on_its_own(
    settings: Settings,
    mirrored: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    await fill(tenant, objects, customers=3, files=2)
    backup = backup_id("manual", datetime.now(UTC))

    outcome = await run_backup(settings, mirrored, objects, tenant, backup, "manual", log)

    assert outcome.made and outcome.record.replicated_at is not None
    replica = on_replica(mirrored)
    prefix = backup_prefix(tenant.slug, backup)
    copies = await replica.objects.versions(prefix)
    assert sorted(v.key.removeprefix(prefix) for v in copies) == [
        "attachments",
        "data",
        "manifest.json",
    ]
    # The replica's manifest names the replica's versions, and is signed: it opens and
    # every table and file checks out there, without the main bucket.
    original = (await open_backup(settings, mirrored, tenant.slug, backup)).manifest
    copy = (await open_backup(settings, replica, tenant.slug, backup)).manifest
    versions = {v.key.removeprefix(prefix): v.version_id for v in copies}
    assert {name: entry.version_id for name, entry in copy.objects.items()} == {
        "data": versions["data"],
        "attachments": versions["attachments"],
    }
    assert copy.objects["data"].version_id != original.objects["data"].version_id
    assert dataclasses.replace(copy, objects=original.objects, mac="") == dataclasses.replace(
        original, mac=""
    )
    report = await verify_backup(settings, replica, tenant.slug, backup)
    assert report.ok, report.problems
    assert (report.tables, report.attachments) == (outcome.record.tables, 2)
    # Locked like the original (S3 keeps the date to the millisecond).
    assert outcome.record.locked_until is not None
    for version in copies:
        info = await replica.objects.stat(version.key, version.version_id)
        assert info is not None and info.lock_mode == "GOVERNANCE" and info.locked_until
        behind = outcome.record.locked_until - datetime.fromisoformat(info.locked_until)
        assert timedelta(0) <= behind < timedelta(milliseconds=1)
    # Sealed there too: no customer's name, no file's content in the clear.
    stored = await content(replica.objects, prefix)
    assert "备份0有限公司".encode() not in stored and b"%PDF-1.4 scan" not in stored
    (event,) = await action_events(tenant, "backup.replicate")
    assert event["variables"]["backup"] == backup and event["error_codes"] == []
    assert event["variables"]["objects"] == 3


async def test_a_failed_copy_leaves_the_backup_and_the_next_run_makes_it(
    settings: Settings,
    mirrored: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    log: ActionLog,
) -> None:
    await fill(tenant, objects, customers=2, files=0)
    missing = ObjectStore(mirrored.objects.client, f"{settings.s3_bucket}-nowhere")
    broken = dataclasses.replace(mirrored, replica=missing)
    backup = backup_id("manual", datetime.now(UTC))

    outcome = await run_backup(settings, broken, objects, tenant, backup, "manual", log)

    assert outcome.made and outcome.record.replicated_at is None
    assert (await verify_backup(settings, mirrored, tenant.slug, backup)).ok
    (failure,) = await action_events(tenant, "backup.replicate")
    assert failure["error_codes"] == ["INTERNAL"]
    assert failure["variables"] == {"backup": backup, "error": "the replica refused: NoSuchBucket"}

    (made,) = await replicate_pending(settings, mirrored, tenant, log, datetime.now(UTC))

    assert made.backup == backup and made.error is None and made.copied is not None
    again = await record(tenant, backup)
    assert again is not None and again.replicated_at is not None
    assert (await verify_backup(settings, on_replica(mirrored), tenant.slug, backup)).ok
    assert await replicate_pending(settings, mirrored, tenant, log, datetime.now(UTC)) == []
    assert [e["error_codes"] for e in await action_events(tenant, "backup.replicate")] == [
        ["INTERNAL"],
        [],
    ]


async def test_a_large_object_is_copied_in_parts(
    settings: Settings, mirrored: BackupStore, tenant: TenantRef
) -> None:
    data = os.urandom(11 * 1024 * 1024)
    manifest = await fabricate(
        settings, mirrored, tenant, "d20261120", datetime.now(UTC), locked_for=LOCK, data=data
    )
    opened = await open_backup(settings, mirrored, tenant.slug, manifest.backup_id)
    until = datetime.now(UTC).replace(microsecond=0) + LOCK

    copied = await replicate(mirrored, manifest, opened.data_key, until=until)

    assert copied.objects == 3 and copied.bytes > len(data)
    replica = on_replica(mirrored)
    key = backup_prefix(tenant.slug, manifest.backup_id) + "data"
    assert hashlib.sha256(await replica.objects.get_bytes(key)).digest() == (
        hashlib.sha256(data).digest()
    )
    # Written a part at a time (a multipart upload's ETag counts its parts).
    found = await asyncio.to_thread(replica.objects.client.stat_object, replica.objects.bucket, key)
    assert found.etag is not None and found.etag.endswith("-3")
    raw = await replica.objects.get_bytes(manifest_key(tenant.slug, manifest.backup_id))
    assert decode_manifest(raw, "replica").objects["data"].version_id == found.version_id


async def test_pruning_reaches_the_replica(
    settings: Settings, mirrored: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    now = datetime.now(UTC)
    ids = []
    for ago in (3, 2, 1):
        ids.append(backup_id("scheduled", now - timedelta(days=ago)))
        await fabricate(
            settings, mirrored, tenant, ids[-1], now - timedelta(days=ago), locked_for=LOCK
        )
    assert len(await replicate_pending(settings, mirrored, tenant, log, now)) == 3
    replica = on_replica(mirrored)
    # A copy of a backup the catalogue no longer knows (a replica that was down when
    # the main bucket was pruned).
    gone = backup_prefix(tenant.slug, "d20200101")
    await asyncio.to_thread(put, replica.objects, gone + "data", b"old copy")
    policy = settings.model_copy(
        update={"backup_keep_daily": 1, "backup_keep_weekly": 0, "backup_keep_monthly": 0}
    )

    locked = await prune_backups(policy, mirrored, tenant, now, log)

    (keeper,) = locked.kept
    assert keeper.id == ids[-1] and locked.locked == {keeper.id: keeper.until}
    for version in await replica.objects.versions(backup_prefix(tenant.slug, keeper.id)):
        info = await replica.objects.stat(version.key, version.version_id)
        assert info is not None and info.locked_until is not None
        assert datetime.fromisoformat(info.locked_until) == keeper.until
    assert sorted((w.backup, w.bucket) for w in locked.waiting) == sorted(
        (backup, bucket) for backup in ids[:2] for bucket in ("main", "replica")
    )
    assert locked.replica_removed == [] and len(await replica.objects.versions(gone)) == 1

    await asyncio.sleep(LOCK.total_seconds() + 0.5)
    pruned = await prune_backups(policy, mirrored, tenant, now + timedelta(days=2), log)

    assert pruned.removed == ids[:2] and pruned.waiting == []
    assert pruned.replica_removed == ["d20200101", *ids[:2]]
    for backup in ids[:2]:
        assert await replica.objects.versions(backup_prefix(tenant.slug, backup)) == []
    assert await replica.objects.versions(gone) == []
    assert len(await replica.objects.versions(backup_prefix(tenant.slug, keeper.id))) == 3
    (_, event) = await action_events(tenant, "backup.prune")
    assert event["variables"]["replicaRemoved"] == ["d20200101", *ids[:2]]


async def test_the_nightly_upkeep_prunes_even_when_the_replica_is_unusable(
    settings: Settings,
    endpoints: Endpoints,
    backups: BackupStore,
    tenant: TenantRef,
    redis: Redis,
) -> None:
    now = datetime.now(UTC)
    ids = [backup_id("scheduled", now - timedelta(days=ago)) for ago in (2, 1)]
    for ago, backup in zip((2, 1), ids, strict=True):
        await fabricate(settings, backups, tenant, backup, now - timedelta(days=ago))
    unusable = settings.model_copy(
        update={
            "backup_keep_daily": 1,
            "backup_replica_endpoint": endpoints.s3_endpoint,
            "backup_replica_bucket": "No Such Bucket",  # refused before any request
        }
    )
    ctx = {"settings": unusable, "s3": s3_client(endpoints), "redis": redis, "job_id": "t"}

    result = await keep_tenant_backups(ctx, tenant.slug)

    assert (result["removed"], result["kept"]) == (ids[:1], ids[1:])
    assert result["problems"] == ["replica: ValueError"] and result["replicated"] == []
    await redis.delete(progress.progress_key(settings.redis_namespace, "t"))


async def test_a_replica_out_of_reach_is_locked_by_the_next_run(
    settings: Settings, mirrored: BackupStore, tenant: TenantRef, log: ActionLog
) -> None:
    now = datetime.now(UTC)
    backup = backup_id("scheduled", now - timedelta(days=1))
    await fabricate(settings, mirrored, tenant, backup, now - timedelta(days=1), locked_for=LOCK)
    assert len(await replicate_pending(settings, mirrored, tenant, log, now)) == 1
    before = await record(tenant, backup)
    away = dataclasses.replace(
        mirrored, replica=ObjectStore(mirrored.objects.client, f"{settings.s3_bucket}-away")
    )

    partly = await prune_backups(settings, away, tenant, now, log)

    assert partly.problems == ["replica: object storage refused: NoSuchBucket"]
    assert partly.locked == {}  # the catalogue waits for both
    (keeper,) = partly.kept
    prefix = backup_prefix(tenant.slug, backup)
    for version in await mirrored.objects.versions(prefix):  # the main bucket is locked
        info = await mirrored.objects.stat(version.key, version.version_id)
        assert info is not None and info.locked_until is not None
        assert datetime.fromisoformat(info.locked_until) == keeper.until
    assert await record(tenant, backup) == before

    whole = await prune_backups(settings, mirrored, tenant, now, log)

    assert whole.problems == [] and whole.locked == {backup: keeper.until}
    for version in await on_replica(mirrored).objects.versions(prefix):
        info = await on_replica(mirrored).objects.stat(version.key, version.version_id)
        assert info is not None and info.locked_until is not None
        assert datetime.fromisoformat(info.locked_until) == keeper.until
    after = await record(tenant, backup)
    assert after is not None and after.locked_until == keeper.until
