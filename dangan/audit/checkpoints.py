"""Checkpoints of a tenant's audit head, kept in S3 where the database cannot reach.

The chain alone cannot show that its newest events were deleted and the head rewound to
match, nor a chain rewritten from some event on with every hash recomputed. A checkpoint
— the head's (seq, hash) at some moment — written where whoever can edit the database
cannot, shows both: ``verify_chain`` checks that the chain still holds each one.

Each checkpoint is one JSON object, ``audit-checkpoints/<slug>/<seq, 12 digits>.json``,
in the bucket ``<DANGAN_S3_BUCKET>-audit``, created with object lock: every version is
locked (mode and days from the settings), so it can be neither deleted nor shortened,
and a write to its key only adds a version — which ``list_checkpoints`` reports. The
object is signed (HMAC under the audit key), so an edited one is told from a genuine one.

Each checkpoint also vouches for the ones before it, checked when it is written
(``since``, :mod:`dangan.audit.custody`), so verify reads few of them.

The cron and ``dangan audit checkpoint`` record ``audit.checkpoint`` in the chain first
and checkpoint the head that holds it. Once retention has pruned the events a
checkpoint covers (:mod:`dangan.audit.retention`), it is removed when its lock runs
out; the anchor's own checkpoint is kept, and locked again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from minio import Minio
from minio.error import S3Error

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoint_objects import (
    CONTENT_TYPE,
    by_key,
    numbered_keys,
    read_checkpoints,
    tenant_prefix,
)
from dangan.audit.checkpoint_objects import Checkpoint as Checkpoint
from dangan.audit.checkpoint_objects import CheckpointStore as CheckpointStore
from dangan.audit.checkpoint_objects import checkpoint_key as checkpoint_key
from dangan.audit.checkpoint_objects import checkpoint_signature as checkpoint_signature
from dangan.audit.custody import vouched_since
from dangan.audit.redaction import audit_key
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_locked_bucket
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

ACTION = "audit.checkpoint"
ANCHOR_LOCK_DAYS = 7
_HEAD_EVENT = (
    "SELECT h.last_seq, e.actions, e.outcome FROM audit_head h"
    " LEFT JOIN audit_event e ON e.seq = h.last_seq"
)


async def open_checkpoint_store(client: Minio, settings: Settings) -> CheckpointStore:
    """The audit bucket (created with object lock if missing) as a checkpoint store."""
    locked = await asyncio.to_thread(ensure_locked_bucket, client, settings.audit_bucket)
    return CheckpointStore(
        objects=ObjectStore(client, settings.audit_bucket),
        key=audit_key(settings.secret_key),
        lock_mode=settings.audit_object_lock_mode if locked else None,
        retention_days=settings.audit_checkpoint_retention_days,
    )


async def _head() -> tuple[int, str]:
    row = await raw_connection().fetchrow("SELECT last_seq, last_hash FROM audit_head")
    return int(row["last_seq"]), str(row["last_hash"])


async def write_checkpoint(
    tenant: TenantRef, store: CheckpointStore, *, now: datetime | None = None
) -> Checkpoint | None:
    """Write a checkpoint of ``tenant``'s audit head; None when there is nothing new (an
    empty chain, or the head's checkpoint is already there: reruns write nothing). It
    says (``since``) which older checkpoints the chain still held when it was written:
    see :func:`dangan.audit.custody.vouched_since`.
    ``now``: the clock (tests of retention write checkpoints of long ago)."""
    seq, hash_ = await run_in_tenant(tenant, _head)
    key = checkpoint_key(tenant.slug, seq)
    if seq == 0 or await store.objects.stat(key) is not None:
        return None
    since = await vouched_since(tenant, store, seq, hash_)
    now = now or datetime.now(UTC)
    body = {
        "tenant": tenant.slug,
        "tenant_id": tenant.id,
        "seq": seq,
        "hash": hash_,
        "at": now.isoformat(),
        "since": since,
    }
    data = orjson.dumps({**body, "signature": checkpoint_signature(store.key, body)})
    if store.lock_mode is None:
        await store.objects.put_bytes(key, data, CONTENT_TYPE)
    else:
        until = now.replace(microsecond=0) + timedelta(days=store.retention_days)
        await store.objects.put_locked(key, data, CONTENT_TYPE, mode=store.lock_mode, until=until)
    return Checkpoint(seq, hash_, at=now, since=since)


async def list_checkpoints(
    tenant: TenantRef, store: CheckpointStore, *, from_seq: int = 0
) -> list[Checkpoint]:
    """``tenant``'s checkpoints from event ``from_seq`` on, in seq order, each version of
    each object read and checked: a bad signature, versions that disagree (overwritten)
    or a delete marker make it ``tampered``. Checkpoints signed for another tenant id (a
    former tenant of the same slug) are not this chain's and are left out. Older ones
    are listed (a thousand versions a request) but not read (a request each)."""
    grouped = by_key(await store.objects.versions(tenant_prefix(tenant.slug)))
    return await read_checkpoints(tenant, store, grouped, numbered_keys(grouped, from_seq))


async def checkpoint_and_record(
    tenant: TenantRef, store: CheckpointStore, log: ActionLog
) -> Checkpoint | None:
    """Record ``audit.checkpoint`` and checkpoint the head that holds that event, so the
    record is covered by the checkpoint it announces. A head that is such an event
    already (nothing happened since) gets no new one, only its checkpoint if that is
    missing (an earlier run failed in between); an empty chain gets neither."""

    async def announce() -> None:
        head = await raw_connection().fetchrow(_HEAD_EVENT)
        if head["last_seq"] == 0 or (head["actions"], head["outcome"]) == ([ACTION], "ok"):
            return
        await log.record(ACTION, details={"bucket": store.objects.bucket})

    await run_in_tenant(tenant, announce)
    try:
        return await write_checkpoint(tenant, store)
    except Exception as exc:
        await log.record_failure(tenant, ACTION, exc)
        raise


async def checkpoint_tenants(
    tenants: list[TenantRef], store: CheckpointStore, log: ActionLog
) -> dict[str, int | None]:
    """Checkpoint each tenant; slug -> the seq written (None: nothing new)."""
    written: dict[str, int | None] = {}
    for tenant in tenants:
        checkpoint = await checkpoint_and_record(tenant, store, log)
        written[tenant.slug] = None if checkpoint is None else checkpoint.seq
    return written


@dataclass(frozen=True)
class Removal:
    removed: int  # versions (and delete markers) of checkpoints removed
    locked: int  # versions still locked: left for a later run


async def remove_checkpoints_before(
    tenant: TenantRef, store: CheckpointStore, seq: int, *, dry_run: bool = False
) -> Removal:
    """Remove the checkpoint objects of ``tenant`` before event ``seq`` (the anchor:
    they vouch for events no longer kept) whose lock has expired; locked versions stay
    (S3 refuses, and governance is never bypassed) and are tried again next time.
    ``dry_run``: count them only."""
    if seq <= 1:
        return Removal(0, 0)
    old = await store.objects.versions(
        tenant_prefix(tenant.slug), before=checkpoint_key(tenant.slug, seq)
    )
    if dry_run:
        return Removal(len(old), 0)
    removed = locked = 0
    for version in old:
        try:
            await store.objects.remove(version.key, version.version_id)
        except S3Error as exc:
            if exc.code != "AccessDenied":
                raise
            locked += 1
        else:
            removed += 1
    return Removal(removed, locked)


async def keep_checkpoint(tenant: TenantRef, store: CheckpointStore, seq: int) -> None:
    """Lock the checkpoint at ``seq`` (the anchor, which verify checks the chain's start
    against) for another ``ANCHOR_LOCK_DAYS`` from now: its own lock has run out by the
    time it becomes the anchor. The daily prune renews it while it is the anchor; a
    short lock lets it go soon after the anchor moves on (a locked version before the
    anchor costs a refused delete every day until then)."""
    if store.lock_mode is None:
        return
    key = checkpoint_key(tenant.slug, seq)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=ANCHOR_LOCK_DAYS)
    for version in await store.objects.versions(key):
        if version.key != key or version.deleted:
            continue
        info = await store.objects.stat(key, version.version_id)
        locked = info.locked_until if info is not None else None
        if locked is not None and datetime.fromisoformat(locked.replace("Z", "+00:00")) >= until:
            continue  # locked longer already: a lock is never shortened
        await store.objects.extend_lock(key, version.version_id, mode=store.lock_mode, until=until)
