"""One checkpoint object in S3: its key, its signed JSON body, and how it is read and
judged — every version of the key checked, so that a bad signature, versions that
disagree or a delete marker make it ``tampered``.

The body: ``{tenant, tenant_id, seq, hash, at, since, signature}``. ``since`` (see
:mod:`dangan.audit.custody`) says which older checkpoints this one vouches for;
checkpoints written before it existed have none and vouch for no other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from dangan.storage import ObjectStore, ObjectVersion
from dangan.tenants.scope import TenantRef

PREFIX = "audit-checkpoints"
CONTENT_TYPE = "application/json"
SEQ_DIGITS = 12
_FIELDS = ("tenant", "tenant_id", "seq", "hash", "at")
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
    at: datetime | None = field(default=None, compare=False)  # when it was written
    # The checkpoints after this event were held by the chain when this one was written
    # (None: written before checkpoints vouched for older ones).
    since: int | None = field(default=None, compare=False)

    @property
    def vouches_after(self) -> int:
        """The checkpoints numbered after this event are vouched for by this one (and
        it by itself); those up to it must be read to be checked."""
        return self.since if self.since is not None else self.seq - 1


def tenant_prefix(slug: str) -> str:
    return f"{PREFIX}/{slug}/"


def checkpoint_key(slug: str, seq: int) -> str:
    return f"{tenant_prefix(slug)}{seq:0{SEQ_DIGITS}d}.json"


def seq_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if len(name) == SEQ_DIGITS and name.isdigit() else None


def by_key(versions: list[ObjectVersion]) -> dict[str, list[ObjectVersion]]:
    """Versions (and delete markers) grouped by key, keys in listing order."""
    grouped: dict[str, list[ObjectVersion]] = {}
    for version in versions:
        grouped.setdefault(version.key, []).append(version)
    return grouped


def numbered_keys(grouped: dict[str, list[ObjectVersion]], from_seq: int) -> list[tuple[int, str]]:
    """(seq, key) of the checkpoint keys numbered ``from_seq`` or more, in seq order."""
    found = ((seq_of(key), key) for key in grouped)
    return sorted((seq, key) for seq, key in found if seq is not None and seq >= from_seq)


def checkpoint_signature(key: bytes, body: dict[str, Any]) -> str:
    """HMAC-SHA256 of a checkpoint's fields (all but the signature) under the audit key."""
    data = b"dangan-audit-checkpoint:" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


async def read_checkpoints(
    tenant: TenantRef,
    store: CheckpointStore,
    grouped: dict[str, list[ObjectVersion]],
    numbered: list[tuple[int, str]],
) -> list[Checkpoint]:
    """Read and judge the checkpoints at ``numbered`` (seq, key) — their versions in
    ``grouped`` — a few at once; this tenant's, in seq order."""
    found: list[Checkpoint | None] = []
    for start in range(0, len(numbered), _READS_AT_ONCE):
        batch = numbered[start : start + _READS_AT_ONCE]
        found += await asyncio.gather(
            *(read_checkpoint(tenant, store, seq, grouped[key]) for seq, key in batch)
        )
    return sorted((c for c in found if c is not None), key=lambda c: c.seq)


async def read_checkpoint(
    tenant: TenantRef, store: CheckpointStore, seq: int, versions: list[ObjectVersion]
) -> Checkpoint | None:
    """Read every version of one checkpoint key and judge it; None if it is a former
    tenant's of the same slug (signed for another tenant id: not this chain's)."""
    key = versions[0].key
    stored = [v for v in versions if not v.deleted]
    bodies = [_checked(store.key, await store.objects.get_bytes(key, v.version_id)) for v in stored]
    genuine = [body for body in bodies if body is not None]
    ours = [body for body in genuine if body["tenant_id"] == tenant.id]
    if genuine and not ours and len(genuine) == len(bodies):
        return None
    hashes = {body["hash"] for body in ours}
    hash_ = min(hashes, default="")  # the one hash when the checkpoint is sound
    at = max((_written_at(body) for body in ours), default=None)
    since = _since(ours)
    if len(genuine) < len(bodies):
        return Checkpoint(seq, hash_, "edited in S3 (bad signature)", at, since)
    if any(body["seq"] != seq for body in ours):
        return Checkpoint(seq, hash_, "holds another event's number (moved in S3)", at, since)
    if len(hashes) > 1:
        return Checkpoint(seq, hash_, "overwritten in S3 with another hash", at, since)
    if len(stored) < len(versions):
        return Checkpoint(seq, hash_, "deleted in S3 (its locked versions remain)", at, since)
    return Checkpoint(seq, hash_, None, at, since)


def _since(bodies: list[dict[str, Any]]) -> int | None:
    """What the versions vouch for together: the largest ``since`` (the most left for
    verify to read), None if any has none."""
    values = [body.get("since") for body in bodies]
    if not values or any(value is None for value in values):
        return None
    return max(int(value) for value in values if value is not None)


def _written_at(body: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(body["at"]))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # unreadable: taken for the newest


def _checked(key: bytes, data: bytes) -> dict[str, Any] | None:
    """The checkpoint's body if its signature is right, else None."""
    try:
        document = orjson.loads(data)
        body = {name: document[name] for name in _FIELDS}
        if "since" in document:
            body["since"] = document["since"]
        signature = document["signature"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if "since" in body and type(body["since"]) is not int:
        return None
    expected = checkpoint_signature(key, body)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
        return None
    return body
