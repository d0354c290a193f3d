"""Each checkpoint vouches for the ones before it (``since``), so ``verify`` reads only
the newest, the anchor's and the unusual ones — and still finds every tampering the
thorough verify finds, reporting it the same way. Reads are counted on the real audit
bucket (moto S3)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from minio import Minio

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import (
    CheckpointStore,
    checkpoint_key,
    checkpoint_signature,
    list_checkpoints,
    open_checkpoint_store,
    write_checkpoint,
)
from dangan.audit.retention import prune_tenant
from dangan.audit.verify import ChainReport, verify_tenant
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.audit.aged import aged_chain
from tests.audit.test_chain import _tamper
from tests.audit.test_checkpoints import _append, _checkpointed, _forge

_HEAD = "SELECT last_seq, last_hash FROM audit_head"
_REWRITE_FROM_6 = (
    "UPDATE audit_event SET actor_name = 'someone else' WHERE seq = 6",
    *(
        sql.format(seq=seq)
        for seq in (6, 7, 8)
        for sql in (
            "UPDATE audit_event SET prev_hash = (SELECT hash FROM audit_event"
            " WHERE seq = {seq} - 1) WHERE seq = {seq}",
            "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers),"
            " 'hex')) WHERE seq = {seq}",
        )
    ),
    "UPDATE audit_head SET last_hash = (SELECT hash FROM audit_event WHERE seq = 8)",
)


class CountingObjects(ObjectStore):
    """The audit bucket, counting the objects read from it (a GET each)."""

    def __init__(self, client: Minio, bucket: str) -> None:
        super().__init__(client, bucket)
        self.reads = 0

    async def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        self.reads += 1
        return await super().get_bytes(key, version_id)


@pytest.fixture
async def store(settings: Settings, endpoints: Endpoints) -> CheckpointStore:
    opened = await open_checkpoint_store(s3_client(endpoints), settings)
    counting = CountingObjects(opened.objects.client, opened.objects.bucket)
    return dataclasses.replace(opened, objects=counting)


def _reads(store: CheckpointStore) -> int:
    assert isinstance(store.objects, CountingObjects)
    return store.objects.reads


async def _verify(
    tenant: TenantRef, store: CheckpointStore, *, thorough: bool = False
) -> tuple[ChainReport, int]:
    """The report, and how many objects verify read from S3."""
    before = _reads(store)
    report = await verify_tenant(tenant, store, thorough=thorough)
    return report, _reads(store) - before


async def _since(store: CheckpointStore, tenant: TenantRef, seq: int) -> object:
    document = orjson.loads(await store.objects.get_bytes(checkpoint_key(tenant.slug, seq)))
    return document.get("since")


async def test_verify_reads_only_the_newest_of_checkpoints_that_vouch_for_each_other(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    for n in range(1, 31):
        await _append(tenant, 2 * n - 1, 2 * n)
        written = await write_checkpoint(tenant, store)
        assert written is not None and (written.seq, written.since) == (2 * n, 0)
    assert [await _since(store, tenant, seq) for seq in (2, 30, 60)] == [0, 0, 0]

    report, reads = await _verify(tenant, store)

    assert report.ok and report.events == 60 and report.checkpoints_checked == 1
    assert reads == 1  # the newest: it vouches for the 29 before it
    thorough, reads = await _verify(tenant, store, thorough=True)
    assert thorough.ok and thorough.events == 60 and thorough.checkpoints_checked == 30
    assert reads == 30


async def test_after_a_prune_verify_reads_the_anchor_and_the_newest(
    tenant: TenantRef, store: CheckpointStore, settings: Settings
) -> None:
    await aged_chain(tenant, store)  # checkpoints 4, 8 (300 days old), 12
    await prune_tenant(tenant, store, 180, ActionLog(settings.secret_key, "job"))
    for n in (16, 18, 20):  # events 16–21 after the prune's (15), a checkpoint per two
        await _append(tenant, n, n + 1)
        assert await write_checkpoint(tenant, store) is not None
    kept = [c.seq for c in await list_checkpoints(tenant, store, from_seq=8)]
    assert kept == [8, 12, 17, 19, 21]

    report, reads = await _verify(tenant, store)

    assert report.ok and (report.starts_at, report.events) == (8, 13)
    assert (report.checkpoints_checked, reads) == (2, 2)  # the anchor's (8) and 21
    thorough, reads = await _verify(tenant, store, thorough=True)
    assert thorough.ok and (thorough.checkpoints_checked, reads) == (5, 5)


async def _rewind_to_6(tenant: TenantRef) -> None:
    await _tamper(
        tenant,
        "DELETE FROM audit_event WHERE seq > 6",
        "UPDATE audit_head SET last_seq = 6, last_hash = (SELECT hash FROM audit_event"
        " WHERE seq = 6)",
    )


@pytest.mark.parametrize(
    ("tampering", "seq", "problem", "message"),
    [
        ("rewind", 8, "checkpoint", "checkpoint 8: chain ends at 6"),
        ("rewrite", 8, "checkpoint", "checkpoint 8: hash differs"),
        ("edit", 4, "s3", "checkpoint 4: edited in S3 (bad signature)"),
        ("resign", 4, "s3", "checkpoint 4: overwritten in S3 with another hash"),
        ("delete", 4, "s3", "checkpoint 4: deleted in S3 (its locked versions remain)"),
    ],
)
async def test_each_tampering_is_found_and_named_as_thorough_names_it(
    tenant: TenantRef,
    store: CheckpointStore,
    tampering: str,
    seq: int,
    problem: str,
    message: str,
) -> None:
    await _checkpointed(tenant, store)  # checkpoints 4 and 8
    key = checkpoint_key(tenant.slug, 4)
    if tampering == "rewind":
        await _rewind_to_6(tenant)
    elif tampering == "rewrite":
        await _tamper(tenant, *_REWRITE_FROM_6)
    elif tampering == "delete":
        await store.objects.remove(key)
    else:
        await _forge(store, key, sign=tampering == "resign")

    report, _ = await _verify(tenant, store)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (seq, problem)
    assert report.broken.message.startswith(message)
    assert report.events == (4 if problem == "checkpoint" else 3)
    assert report == (await _verify(tenant, store, thorough=True))[0]


async def test_a_rewritten_chain_checkpointed_again_is_still_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    """The next checkpoint holds the rewritten chain; the one before it does not, and
    the new one says so: verify reads back to it."""
    await _checkpointed(tenant, store)
    await _tamper(tenant, *_REWRITE_FROM_6)
    await _append(tenant, 9, 10)

    written = await write_checkpoint(tenant, store)

    assert written is not None and (written.seq, written.since) == (10, 8)
    report, _ = await _verify(tenant, store)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (8, "checkpoint")
    assert report.broken.message.startswith("checkpoint 8: hash differs")
    assert report == (await _verify(tenant, store, thorough=True))[0]


async def test_events_deleted_and_put_back_after_a_checkpoint_of_the_rewound_head_are_found(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    """Events 7–8 hidden away, the head rewound; an event 7 is recorded meanwhile and
    checkpointed; then it is deleted and 7–8 put back, the head with them. The chain
    holds the newest checkpoint (8) again, but not the one written for the rewound
    head — after 8, though numbered lower: S3's own time shows it."""
    await _checkpointed(tenant, store)
    await _tamper(tenant, "CREATE TABLE hidden AS SELECT * FROM audit_event WHERE seq > 6")
    await _rewind_to_6(tenant)
    await asyncio.sleep(1.1)  # S3 tells the time of writing to the second
    await _append(tenant, 107, 107)
    written = await write_checkpoint(tenant, store)
    assert written is not None and written.seq == 7
    await _tamper(
        tenant,
        "DELETE FROM audit_event WHERE seq > 6",
        "INSERT INTO audit_event SELECT * FROM hidden",
        "UPDATE audit_head SET last_seq = 8, last_hash = (SELECT hash FROM hidden WHERE seq = 8)",
        "DROP TABLE hidden",
    )

    report, _ = await _verify(tenant, store)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (7, "checkpoint")
    assert report.broken.message.startswith("checkpoint 7: hash differs")
    assert report == (await _verify(tenant, store, thorough=True))[0]


async def _signed_checkpoint(
    tenant: TenantRef, store: CheckpointStore, seq: int, hash_: str, **fields: object
) -> None:
    """Write a checkpoint object by hand, signed with the audit key, locked a day."""
    now = datetime.now(UTC)
    body = {
        "tenant": tenant.slug,
        "tenant_id": tenant.id,
        "seq": seq,
        "hash": hash_,
        "at": now.isoformat(),
        **fields,
    }
    data = orjson.dumps({**body, "signature": checkpoint_signature(store.key, body)})
    assert store.lock_mode is not None
    until = now.replace(microsecond=0) + timedelta(days=1)
    key = checkpoint_key(tenant.slug, seq)
    await store.objects.put_locked(key, data, "application/json", mode=store.lock_mode, until=until)


async def _legacy_checkpoint(tenant: TenantRef, store: CheckpointStore) -> int:
    """A checkpoint of the head as written before checkpoints vouched for each other."""
    head = await run_in_tenant(tenant, lambda: raw_connection().fetchrow(_HEAD))
    await _signed_checkpoint(tenant, store, head["last_seq"], head["last_hash"])
    return int(head["last_seq"])


async def test_checkpoints_written_before_since_existed_are_read_until_vouched_for(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    for n in (2, 4):
        await _append(tenant, n - 1, n)
        assert await _legacy_checkpoint(tenant, store) == n

    report, reads = await _verify(tenant, store)

    assert report.ok and (report.checkpoints_checked, reads) == (2, 2)  # the newest, 4: all
    await _append(tenant, 5, 6)
    written = await write_checkpoint(tenant, store)
    # 6 vouches for 4, which it found held, but not for what 4 never checked: 2.
    assert written is not None and (written.seq, written.since) == (6, 3)
    report, reads = await _verify(tenant, store)
    assert report.ok and (report.checkpoints_checked, reads) == (2, 2)  # 6 and 2
    await _append(tenant, 7, 8)
    written = await write_checkpoint(tenant, store)
    assert written is not None and (written.seq, written.since) == (8, 3)  # 6's goes on
    assert await _since(store, tenant, 8) == 3
    report, reads = await _verify(tenant, store)
    assert report.ok and (report.checkpoints_checked, reads) == (2, 2)  # 8 and 2


async def test_a_signed_checkpoint_added_above_the_others_is_found_by_the_thorough_verify(
    tenant: TenantRef, store: CheckpointStore
) -> None:
    """Someone holding the audit key (DANGAN_SECRET_KEY) and able to write to the bucket
    rewrites the chain and signs a checkpoint of it, numbered above the others, that
    claims to vouch for them all. The default verify trusts a checkpoint signed with the
    key; --thorough reads every checkpoint, and the genuine 8 shows the rewrite."""
    await _checkpointed(tenant, store)
    await _tamper(tenant, *_REWRITE_FROM_6)
    await _append(tenant, 9, 9)
    head = await run_in_tenant(tenant, lambda: raw_connection().fetchrow(_HEAD))
    await _signed_checkpoint(tenant, store, 9, head["last_hash"], since=0)

    report, reads = await _verify(tenant, store, thorough=True)

    assert report.broken is not None and reads == 3
    assert (report.broken.seq, report.broken.problem) == (8, "checkpoint")
    assert report.broken.message.startswith("checkpoint 8: hash differs")
