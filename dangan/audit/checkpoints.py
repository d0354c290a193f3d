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
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from minio import Minio

from dangan.audit.redaction import audit_key
from dangan.settings import Settings
from dangan.storage import ObjectStore, ObjectVersion, ensure_locked_bucket
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

PREFIX = "audit-checkpoints"
CONTENT_TYPE = "application/json"
_SEQ_DIGITS = 12
_READS_AT_ONCE = 16


@dataclass(frozen=True)
class CheckpointStore:
    """Where checkpoints go, and how they are signed and locked."""

    objects: ObjectStore  # the audit bucket
    key: bytes  # the audit key (signatures)
    lock_mode: str | None  # GOVERNANCE | COMPLIANCE; None: the bucket has no object lock
    retention_days: int


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    tampered: str | None = None  # why the object in S3 is not to be trusted


async def open_checkpoint_store(client: Minio, settings: Settings) -> CheckpointStore:
    """The audit bucket (created with object lock if missing) as a checkpoint store."""
    locked = await asyncio.to_thread(ensure_locked_bucket, client, settings.audit_bucket)
    return CheckpointStore(
        objects=ObjectStore(client, settings.audit_bucket),
        key=audit_key(settings.secret_key),
        lock_mode=settings.audit_object_lock_mode if locked else None,
        retention_days=settings.audit_checkpoint_retention_days,
    )


def checkpoint_key(slug: str, seq: int) -> str:
    return f"{PREFIX}/{slug}/{seq:0{_SEQ_DIGITS}d}.json"


def checkpoint_signature(key: bytes, body: dict[str, Any]) -> str:
    """HMAC-SHA256 of a checkpoint's fields (all but the signature) under the audit key."""
    data = b"dangan-audit-checkpoint:" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


async def _head() -> tuple[int, str]:
    row = await raw_connection().fetchrow("SELECT last_seq, last_hash FROM audit_head")
    return int(row["last_seq"]), str(row["last_hash"])


async def write_checkpoint(tenant: TenantRef, store: CheckpointStore) -> Checkpoint | None:
    """Write a checkpoint of ``tenant``'s audit head; None when there is nothing new (an
    empty chain, or the head's checkpoint is already there: reruns write nothing)."""
    seq, hash_ = await run_in_tenant(tenant, _head)
    key = checkpoint_key(tenant.slug, seq)
    if seq == 0 or await store.objects.stat(key) is not None:
        return None
    now = datetime.now(UTC)
    body = {
        "tenant": tenant.slug,
        "tenant_id": tenant.id,
        "seq": seq,
        "hash": hash_,
        "at": now.isoformat(),
    }
    data = orjson.dumps({**body, "signature": checkpoint_signature(store.key, body)})
    if store.lock_mode is None:
        await store.objects.put_bytes(key, data, CONTENT_TYPE)
    else:
        until = now.replace(microsecond=0) + timedelta(days=store.retention_days)
        await store.objects.put_locked(key, data, CONTENT_TYPE, mode=store.lock_mode, until=until)
    return Checkpoint(seq, hash_)


async def list_checkpoints(tenant: TenantRef, store: CheckpointStore) -> list[Checkpoint]:
    """``tenant``'s checkpoints in seq order, each version of each object read and
    checked: a bad signature, versions that disagree (overwritten) or a delete marker
    make it ``tampered``. Checkpoints signed for another tenant id (a former tenant of
    the same slug) are not this chain's and are left out."""
    by_key: dict[str, list[ObjectVersion]] = {}
    for version in await store.objects.versions(f"{PREFIX}/{tenant.slug}/"):
        by_key.setdefault(version.key, []).append(version)
    numbered = [(seq, key) for key in by_key if (seq := _seq_of(key)) is not None]
    found: list[Checkpoint | None] = []
    for start in range(0, len(numbered), _READS_AT_ONCE):
        batch = numbered[start : start + _READS_AT_ONCE]
        found += await asyncio.gather(
            *(_read(tenant, store, seq, by_key[key]) for seq, key in batch)
        )
    return sorted((c for c in found if c is not None), key=lambda c: c.seq)


def _seq_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if len(name) == _SEQ_DIGITS and name.isdigit() else None


async def _read(
    tenant: TenantRef, store: CheckpointStore, seq: int, versions: list[ObjectVersion]
) -> Checkpoint | None:
    key = versions[0].key
    stored = [v for v in versions if not v.deleted]
    bodies = [_checked(store.key, await store.objects.get_bytes(key, v.version_id)) for v in stored]
    genuine = [body for body in bodies if body is not None]
    ours = [body for body in genuine if body["tenant_id"] == tenant.id]
    if genuine and not ours and len(genuine) == len(bodies):
        return None
    hashes = {body["hash"] for body in ours}
    hash_ = min(hashes, default="")  # the one hash when the checkpoint is sound
    if len(genuine) < len(bodies):
        return Checkpoint(seq, hash_, "edited in S3 (bad signature)")
    if any(body["seq"] != seq for body in ours):
        return Checkpoint(seq, hash_, "holds another event's number (moved in S3)")
    if len(hashes) > 1:
        return Checkpoint(seq, hash_, "overwritten in S3 with another hash")
    if len(stored) < len(versions):
        return Checkpoint(seq, hash_, "deleted in S3 (its locked versions remain)")
    return Checkpoint(seq, hash_)


def _checked(key: bytes, data: bytes) -> dict[str, Any] | None:
    """The checkpoint's body if its signature is right, else None."""
    try:
        document = orjson.loads(data)
        body = {name: document[name] for name in ("tenant", "tenant_id", "seq", "hash", "at")}
        signature = document["signature"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    expected = checkpoint_signature(key, body)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
        return None
    return body


async def checkpoint_tenants(
    tenants: list[TenantRef], store: CheckpointStore
) -> dict[str, int | None]:
    """Checkpoint each tenant; slug -> the seq written (None: nothing new)."""
    written: dict[str, int | None] = {}
    for tenant in tenants:
        checkpoint = await write_checkpoint(tenant, store)
        written[tenant.slug] = None if checkpoint is None else checkpoint.seq
    return written
