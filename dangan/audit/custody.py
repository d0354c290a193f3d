"""Checkpoints that vouch for the ones before them, so that verify reads few of them.

A chain that holds the newest checkpoint is, up to it, as it was when that checkpoint
was written — not necessarily as it was when the older ones were: a chain rewritten at
event k (hashes recomputed) is checkpointed again by the next cron run, and only the
checkpoints written before the rewrite, numbered k or more, show it. So before writing
one, the writer checks that the chain still holds its predecessor — the newest
checkpoint numbered below the head: the events from it to the head recomputed and
linked, from its hash to the head's — and records in the new checkpoint (signed)
``since``: the checkpoints numbered after that event were all held then.

- predecessor held: its own ``since`` goes on (one written before ``since`` existed:
  the checkpoints before it are not vouched for);
- predecessor not held, or tampered with in S3: ``since`` is its number, so verify
  reads it and every older one, and finds what is wrong;
- none: nothing older to vouch for.

Verify (:func:`select_checkpoints`) then reads, from the anchor on: the anchor's
checkpoint, the newest, those numbered up to the newest's ``since``, and every key whose
version listing is unusual — more than one version, a delete marker, or written after a
checkpoint with a higher number (a head rewound and checkpointed again). Together with
the chain holding the newest, that proves it holds all of them (README: the audit
trail). Someone who holds the audit key and can write to S3 could add a checkpoint of
a rewritten chain, signed, above the others; ``verify --thorough`` reads every
checkpoint and finds that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from dangan.audit.anchor import Anchor, read_anchor
from dangan.audit.chain_walk import STRETCH, ChainWalk
from dangan.audit.checkpoint_objects import (
    SEQ_DIGITS,
    Checkpoint,
    CheckpointStore,
    by_key,
    numbered_keys,
    read_checkpoint,
    read_checkpoints,
    tenant_prefix,
)
from dangan.storage import ObjectVersion
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

_READ = 5000
_NEAREST_BLOCK = 3  # digits: the first blocks listed hold a thousand numbers


async def vouched_since(tenant: TenantRef, store: CheckpointStore, seq: int, hash_: str) -> int:
    """What a checkpoint of the head (``seq``, ``hash_``) about to be written vouches
    for: the checkpoints numbered after the returned event were held by the chain."""
    predecessor = await _predecessor(tenant, store, seq)
    if predecessor is None:
        return 0
    if predecessor.tampered is None:

        async def holds() -> bool:
            return await _holds(predecessor, seq, hash_)

        if await run_in_tenant(tenant, holds):
            return predecessor.vouches_after
    return predecessor.seq


async def _predecessor(tenant: TenantRef, store: CheckpointStore, seq: int) -> Checkpoint | None:
    """This tenant's newest checkpoint numbered below ``seq``, every key listed with
    its versions (delete markers too) in the nearest blocks of numbers first."""
    seen: set[str] = set()
    for prefix in _blocks(tenant.slug, seq):
        grouped = by_key(await store.objects.versions(prefix))
        below = [(n, key) for n, key in numbered_keys(grouped, 0) if n < seq and key not in seen]
        for n, key in reversed(below):
            seen.add(key)
            found = await read_checkpoint(tenant, store, n, grouped[key])
            if found is not None:
                return found
    return None


def _blocks(slug: str, seq: int) -> Iterator[str]:
    """Key prefixes of ever wider blocks of numbers below ``seq``, nearest first: the
    block of a thousand that holds it and the one before, then of ten thousand, …,
    until a block starting at 0 has been listed (everything below ``seq`` has been)."""
    root = tenant_prefix(slug)
    for free in range(_NEAREST_BLOCK, SEQ_DIGITS + 1):
        size = 10**free
        block = seq // size
        for start in (block, block - 1) if block > 0 else (block,):
            yield root + f"{start * size:0{SEQ_DIGITS}d}"[: SEQ_DIGITS - free]
        if block <= 1:
            return


async def _holds(predecessor: Checkpoint, seq: int, hash_: str) -> bool:
    """Whether the chain runs from ``predecessor`` to event ``seq`` with hash ``hash_``:
    every event between there, in order, unedited, each carrying the hash of the one
    before, the first the predecessor's (in the open tenant transaction)."""
    conn = raw_connection()
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    anchor = await read_anchor()
    if predecessor.seq < anchor.seq or (
        predecessor.seq == anchor.seq and predecessor.hash != anchor.hash
    ):
        return False
    walk = ChainWalk({}, Anchor(predecessor.seq, predecessor.hash))
    after = predecessor.seq
    while after < seq:
        rows = await conn.fetch(STRETCH, after, seq, _READ)
        if not rows:
            break
        for row in rows:
            if walk.check(row["seq"], row["prev_hash"], row["hash"], row["recomputed"]):
                return False
        after = rows[-1]["seq"]
    return walk.check_head(seq, hash_) is None


async def select_checkpoints(
    tenant: TenantRef, store: CheckpointStore, anchor_seq: int
) -> list[Checkpoint]:
    """Read the few checkpoints from ``anchor_seq`` on that verify needs (see the
    module's docstring): the anchor's, the newest (and, while the newest read is
    tampered with, the next), those up to its ``since``, and the unusual ones."""
    grouped = by_key(await store.objects.versions(tenant_prefix(tenant.slug)))
    numbered = numbered_keys(grouped, anchor_seq)
    read: list[Checkpoint] = []
    done: set[str] = set()
    newest: Checkpoint | None = None
    for seq, key in reversed(numbered):
        found = await read_checkpoint(tenant, store, seq, grouped[key])
        done.add(key)
        if found is None:
            continue  # a former tenant's of the same slug
        read.append(found)
        if found.tampered is None:
            newest = found
            break
    upto = newest.vouches_after if newest is not None else anchor_seq  # else all read
    unusual = _unusual(grouped, numbered)
    rest = [
        (seq, key)
        for seq, key in numbered
        if key not in done and (seq == anchor_seq or seq <= upto or key in unusual)
    ]
    read += await read_checkpoints(tenant, store, grouped, rest)
    return sorted(read, key=lambda c: c.seq)


def _unusual(grouped: dict[str, list[ObjectVersion]], numbered: list[tuple[int, str]]) -> set[str]:
    """Keys with more than one version or a delete marker, and keys written after a
    key numbered higher (S3's own time of writing: a checkpoint is written for the
    head, so numbers only grow with time unless the head was rewound)."""
    unusual: set[str] = set()
    earliest_above: datetime | None = None
    for _, key in reversed(numbered):
        versions = grouped[key]
        if len(versions) > 1 or any(v.deleted for v in versions):
            unusual.add(key)
        times = [v.modified for v in versions if v.modified is not None]
        if not times:
            continue
        if earliest_above is not None and max(times) > earliest_above:
            unusual.add(key)
        earliest_above = min(times) if earliest_above is None else min(earliest_above, *times)
    return unusual
