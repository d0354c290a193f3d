"""Checkpoints of the audit head in S3 (object-locked): written once per head, and what
the chain alone cannot show — the newest events deleted with the head rewound, a chain
rewritten with recomputed hashes — is found by ``verify_chain``, as is a checkpoint
tampered with in S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from minio.error import S3Error

from dangan.audit.chain import append_event
from dangan.audit.checkpoints import (
    Checkpoint,
    CheckpointStore,
    checkpoint_key,
    checkpoint_signature,
    list_checkpoints,
    write_checkpoint,
)
from dangan.audit.verify import verify_chain
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.audit import audit_checkpoints
from dangan.workers.settings import build_worker
from tests.audit.test_chain import _event, _tamper


async def _append(tenant: TenantRef, first: int, last: int) -> None:
    async def append() -> None:
        for n in range(first, last + 1):
            await append_event(raw_connection(), _event(n))

    await run_in_tenant(tenant, append)


async def _checkpointed(tenant: TenantRef, store: CheckpointStore) -> list[Checkpoint]:
    """A chain of 8 events with checkpoints at events 4 and 8."""
    await _append(tenant, 1, 4)
    await write_checkpoint(tenant, store)
    await _append(tenant, 5, 8)
    await write_checkpoint(tenant, store)
    checkpoints = await list_checkpoints(tenant, store)
    assert [(c.seq, c.tampered) for c in checkpoints] == [(4, None), (8, None)]
    assert (await verify_chain(tenant, checkpoints=checkpoints)).ok
    return checkpoints


async def test_a_checkpoint_is_locked_and_written_once_per_head(
    tenant: TenantRef, store: CheckpointStore, settings: Settings
) -> None:
    assert store.lock_mode == "GOVERNANCE" and store.retention_days == 180
    assert await write_checkpoint(tenant, store) is None  # an empty chain: nothing to keep
    await _append(tenant, 1, 3)

    written = await write_checkpoint(tenant, store)

    head = await run_in_tenant(
        tenant, lambda: raw_connection().fetchrow("SELECT last_seq, last_hash FROM audit_head")
    )
    assert written == Checkpoint(3, head["last_hash"])
    key = checkpoint_key(tenant.slug, 3)
    assert key == f"audit-checkpoints/{tenant.slug}/000000000003.json"
    info = await store.objects.stat(key)
    assert info is not None and info.encrypted and info.lock_mode == "GOVERNANCE"
    assert info.locked_until is not None
    until = datetime.fromisoformat(info.locked_until.replace("Z", "+00:00"))
    assert abs(until - (datetime.now(UTC) + timedelta(days=180))) < timedelta(minutes=5)
    document = orjson.loads(await store.objects.get_bytes(key))
    assert document["tenant"] == tenant.slug and document["tenant_id"] == tenant.id
    assert (document["seq"], document["hash"]) == (3, head["last_hash"])
    assert store.objects.bucket == settings.audit_bucket == f"{settings.s3_bucket}-audit"

    assert await write_checkpoint(tenant, store) is None  # the head has not moved
    assert len(await store.objects.versions(f"audit-checkpoints/{tenant.slug}/")) == 1
    await _append(tenant, 4, 5)
    assert await write_checkpoint(tenant, store) is not None
    checkpoints = await list_checkpoints(tenant, store)
    assert [(c.seq, c.tampered) for c in checkpoints] == [(3, None), (5, None)]
    report = await verify_chain(tenant, checkpoints=checkpoints)
    assert report.ok and report.events == 5


async def test_newest_events_deleted_and_head_rewound_are_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    checkpoints = await _checkpointed(tenant, store)

    await _tamper(
        tenant,
        "DELETE FROM audit_event WHERE seq > 6",
        "UPDATE audit_head SET last_seq = 6, last_hash = (SELECT hash FROM audit_event"
        " WHERE seq = 6)",
    )

    assert (await verify_chain(tenant)).ok  # invisible from inside the database
    report = await verify_chain(tenant, checkpoints=checkpoints, batch_size=3)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (8, "checkpoint")
    assert report.broken.message.startswith("checkpoint 8: chain ends at 6")
    assert report.events == 4  # the last event a checkpoint vouches for


async def test_a_chain_rewritten_with_recomputed_hashes_is_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    checkpoints = await _checkpointed(tenant, store)
    rehash = (
        "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers), 'hex'))"
        " WHERE seq = {seq}"
    )
    relink = (
        "UPDATE audit_event SET prev_hash = (SELECT hash FROM audit_event WHERE seq = {seq} - 1)"
        " WHERE seq = {seq}"
    )

    await _tamper(
        tenant,
        "UPDATE audit_event SET actor_name = 'someone else' WHERE seq = 6",
        *(sql.format(seq=seq) for seq in (6, 7, 8) for sql in (relink, rehash)),
        "UPDATE audit_head SET last_hash = (SELECT hash FROM audit_event WHERE seq = 8)",
    )

    assert (await verify_chain(tenant)).ok  # consistent in itself
    report = await verify_chain(tenant, checkpoints=checkpoints)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (8, "checkpoint")
    assert report.broken.message.startswith("checkpoint 8: hash differs")
    assert report.events == 4


async def _forge(store: CheckpointStore, key: str, *, sign: bool) -> None:
    """Write a version of the checkpoint with another hash: signed with the audit key
    (an insider who has it) or not (anyone else)."""
    document = orjson.loads(await store.objects.get_bytes(key))
    document["hash"] = "f" * 64
    if sign:
        body = {name: value for name, value in document.items() if name != "signature"}
        document["signature"] = checkpoint_signature(store.key, body)
    await store.objects.put_bytes(key, orjson.dumps(document), "application/json")


@pytest.mark.parametrize(
    ("tampering", "finding"),
    [
        ("edit", "edited in S3 (bad signature)"),
        ("resign", "overwritten in S3 with another hash"),
        ("delete", "deleted in S3 (its locked versions remain)"),
    ],
)
async def test_a_checkpoint_tampered_with_in_s3_is_found(
    tenant: TenantRef, store: CheckpointStore, tampering: str, finding: str
) -> None:
    await _checkpointed(tenant, store)
    key = checkpoint_key(tenant.slug, 4)
    (original,) = await store.objects.versions(key)

    if tampering == "delete":
        await store.objects.remove(key)  # only a delete marker: the locked version stays
    else:
        await _forge(store, key, sign=tampering == "resign")

    # The locked version itself can be neither removed nor replaced.
    with pytest.raises(S3Error) as refused:
        await store.objects.remove(key, original.version_id)
    assert refused.value.code == "AccessDenied"
    assert original in await store.objects.versions(key)
    checkpoints = await list_checkpoints(tenant, store)
    assert [(c.seq, c.tampered) for c in checkpoints] == [(4, finding), (8, None)]
    report = await verify_chain(tenant, checkpoints=checkpoints)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (4, "s3")
    assert report.broken.message == f"checkpoint 4: {finding}"
    assert report.events == 3


async def test_the_cron_checkpoints_every_tenant_once_per_head(
    tenant: TenantRef, store: CheckpointStore, settings: Settings, endpoints: Endpoints
) -> None:
    await _append(tenant, 1, 2)
    ctx = {"audit_checkpoints": store, "settings": settings}

    first = await audit_checkpoints(ctx)
    again = await audit_checkpoints(ctx)

    # Event 3 announces the checkpoint (audit.checkpoint), which covers it.
    assert first[tenant.slug] == 3 and again[tenant.slug] is None
    assert {"alpha", "beta", "gamma"} <= first.keys()
    assert all(seq is None for seq in again.values())
    worker = build_worker(settings, endpoints, connect_database=False)
    (job,) = [job for job in worker.cron_jobs if job.coroutine is audit_checkpoints]
    assert job.name == f"cron:{settings.redis_namespace}:audit_checkpoints" and job.unique
    assert job.minute == set(range(5, 60, 10))
