"""Checking a tenant's audit chain: every event recomputed, in order, against its
neighbours and the head — the first broken link is named.

What each finding means:
- ``missing``: a number is skipped (an event was deleted), or the head counts more
  events than the chain holds (the last ones were deleted);
- ``edited``: an event's content no longer gives its hash;
- ``unlinked``: an event does not carry the hash of the one before it (an event before
  it was replaced, inserted or moved, with its own hash made to fit);
- ``inserted``: an event numbered out of order, or beyond the head;
- ``head``: the head's last hash is not the last event's;
- ``checkpoint``: the chain no longer holds a checkpoint kept in S3 (see
  :mod:`dangan.audit.checkpoints`): it ends before the checkpoint (the newest events
  were deleted and the head rewound) or its event there has another hash (the chain was
  rewritten, hashes recomputed, at or before that event);
- ``s3``: a checkpoint object itself was tampered with in S3.

- ``anchor``: the chain starts after an event no sound checkpoint vouches for (events
  deleted from its start without a covering checkpoint, or the anchor forged), or one
  whose checkpoint is younger than the six months events are kept at least.

Without checkpoints, deleting the newest events and rewinding the head to match cannot
be seen from inside the database. After pruning (:mod:`dangan.audit.retention`) the
chain starts after its anchor, and only checkpoints from the anchor on are read: by
default the few that vouch for the others (:mod:`dangan.audit.custody`), all of them
when something is found (so the finding is named as ``thorough`` names it) or when
asked (``thorough``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dangan.audit.anchor import Anchor, read_anchor
from dangan.audit.chain_walk import BrokenLink, ChainWalk
from dangan.audit.checkpoints import Checkpoint, CheckpointStore, list_checkpoints
from dangan.audit.custody import select_checkpoints
from dangan.settings import MIN_AUDIT_RETENTION_DAYS
from dangan.tenants.scope import (
    TenantRef,
    TenantSession,
    current_tenant,
    raw_connection,
    run_in_tenant,
    tenant_transaction,
)

ProgressCallback = Callable[[int, int], None]

_BATCH = (
    "SELECT seq, prev_hash, hash,"
    " audit_event_hash(e, encode(sha256(e.customers), 'hex')) AS recomputed FROM audit_event e"
    " WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $2"
)
_NO_BOUND = 2**63 - 1
# Events numbered beyond the head, seen with the head in one snapshot (one statement):
# appended legitimately, an event and the head that counts it commit together.
_BEYOND_HEAD = (
    "SELECT h.last_seq FROM audit_head h"
    " WHERE EXISTS (SELECT 1 FROM audit_event e WHERE e.seq > h.last_seq)"
)


@dataclass(frozen=True)
class ChainReport:
    events: int  # events found sound, in order, before the first broken one
    head_seq: int
    broken: BrokenLink | None
    starts_at: int = 0  # the anchor: events up to this one were pruned (0: none)
    checkpoints_checked: int = 0  # checkpoints read from S3 and checked (verify_tenant)
    newest_checkpoint: int | None = None  # the seq of the newest of them

    @property
    def ok(self) -> bool:
        return self.broken is None


def check_anchor(
    anchor: Anchor, checkpoints: Sequence[Checkpoint], now: datetime
) -> BrokenLink | None:
    """A pruned chain starts after an event a sound checkpoint vouches for, written at
    least six months before ``now``: so events leave only covered, and only old."""
    if not anchor.pruned:
        return None
    seq = anchor.seq
    found = next((c for c in checkpoints if c.seq == seq), None)
    if found is None:
        return BrokenLink(
            seq,
            "anchor",
            f"the chain starts after event {seq}, but no checkpoint in S3 vouches for it"
            " (events deleted without a checkpoint covering them, or the anchor forged)",
        )
    if found.tampered is not None:
        return BrokenLink(seq, "s3", f"checkpoint {seq} (the anchor): {found.tampered}")
    if found.hash != anchor.hash:
        return BrokenLink(
            seq, "anchor", f"the anchor's hash is not that of checkpoint {seq} (anchor forged)"
        )
    if found.at is None or found.at > now - timedelta(days=MIN_AUDIT_RETENTION_DAYS):
        return BrokenLink(
            seq,
            "anchor",
            f"checkpoint {seq}, where the chain starts, is younger than"
            f" {MIN_AUDIT_RETENTION_DAYS} days: events were deleted before their retention",
        )
    return None


async def verify_chain(
    tenant: TenantRef,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
) -> ChainReport:
    """Walk ``tenant``'s chain in order from its anchor, in batches, in one consistent
    snapshot (events appended meanwhile are neither seen nor reported), checking it holds
    ``checkpoints`` (from :func:`dangan.audit.checkpoints.list_checkpoints`; those before
    the anchor are ignored). The first broken link, in event order, is named: a
    checkpoint tampered with in S3 counts at its number."""
    async with tenant_transaction(tenant):
        conn = raw_connection()
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return await _verify(conn, checkpoints, batch_size, on_progress, snapshot=True)


async def verify_open_chain(
    *, checkpoints: Sequence[Checkpoint] = (), batch_size: int = 5000
) -> ChainReport:
    """:func:`verify_chain` for code already inside the tenant's transaction (a request,
    which may not open another). That transaction reads committed data statement by
    statement, so the walk stops at the head as it was when the walk began (events
    appended meanwhile are not reported), and events numbered beyond the head are looked
    for in one statement with the head."""
    return await _verify(raw_connection(), checkpoints, batch_size, None, snapshot=False)


async def _verify(
    conn: TenantSession,
    checkpoints: Sequence[Checkpoint],
    batch_size: int,
    on_progress: ProgressCallback | None,
    *,
    snapshot: bool,
) -> ChainReport:
    report = await _walk_chain(conn, checkpoints, batch_size, on_progress, snapshot=snapshot)
    tampered = next(
        (c for c in checkpoints if c.tampered is not None and c.seq > report.starts_at), None
    )
    if tampered is None or (report.broken is not None and report.broken.seq <= tampered.seq):
        return report
    broken = BrokenLink(tampered.seq, "s3", f"checkpoint {tampered.seq}: {tampered.tampered}")
    sound = min(report.events, tampered.seq - 1 - report.starts_at)
    return ChainReport(sound, report.head_seq, broken, report.starts_at)


async def verify_tenant(
    tenant: TenantRef,
    store: CheckpointStore,
    *,
    thorough: bool = False,
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
) -> ChainReport:
    """:func:`verify_chain` against the tenant's checkpoints from its anchor on (the
    older ones vouch for events no longer kept, and are not read), chosen as
    :func:`against_checkpoints` says."""
    anchor = await run_in_tenant(tenant, read_anchor)

    async def walk(checkpoints: Sequence[Checkpoint]) -> ChainReport:
        return await verify_chain(
            tenant, checkpoints=checkpoints, batch_size=batch_size, on_progress=on_progress
        )

    return await against_checkpoints(tenant, store, anchor.seq, walk, thorough=thorough)


async def verify_open_tenant(store: CheckpointStore) -> ChainReport:
    """:func:`verify_open_chain` (inside the tenant's transaction, as a request is)
    against the checkpoints :func:`against_checkpoints` chooses."""
    anchor = await read_anchor()

    async def walk(checkpoints: Sequence[Checkpoint]) -> ChainReport:
        return await verify_open_chain(checkpoints=checkpoints)

    return await against_checkpoints(current_tenant(), store, anchor.seq, walk)


async def against_checkpoints(
    tenant: TenantRef,
    store: CheckpointStore,
    anchor_seq: int,
    walk: Callable[[Sequence[Checkpoint]], Awaitable[ChainReport]],
    *,
    thorough: bool = False,
) -> ChainReport:
    """The chain walked (``walk``) against its checkpoints from ``anchor_seq`` on. By
    default only the few that vouch for the others are read (:func:`select_checkpoints`);
    if one of them is tampered with, or the chain does not verify against them, every
    checkpoint is read and the chain walked again, so the first broken link is named
    exactly as ``thorough`` (every checkpoint read from the start) names it."""
    if not thorough:
        few = await select_checkpoints(tenant, store, anchor_seq)
        if all(c.tampered is None for c in few):
            report = await walk(few)
            if report.ok:
                return _checked(report, few)
    checkpoints = await list_checkpoints(tenant, store, from_seq=anchor_seq)
    return _checked(await walk(checkpoints), checkpoints)


def _checked(report: ChainReport, checkpoints: Sequence[Checkpoint]) -> ChainReport:
    newest = max((c.seq for c in checkpoints), default=None)
    return replace(report, checkpoints_checked=len(checkpoints), newest_checkpoint=newest)


async def _walk_chain(
    conn: TenantSession,
    checkpoints: Sequence[Checkpoint],
    batch_size: int,
    on_progress: ProgressCallback | None,
    *,
    snapshot: bool,
) -> ChainReport:
    """Walk the chain on ``conn`` from its anchor: in one ``snapshot`` (everything up to
    the end), or else up to the head read first, then whatever lies beyond the head at
    that moment."""
    anchor = await read_anchor()
    head = await conn.fetchrow("SELECT last_seq, last_hash, now() AS now FROM audit_head")
    kept = [c for c in checkpoints if c.seq >= anchor.seq]
    broken = check_anchor(anchor, kept, head["now"])
    if broken is not None:
        return ChainReport(0, head["last_seq"], broken, anchor.seq)
    upto = _NO_BOUND if snapshot else head["last_seq"]
    walk = ChainWalk({c.seq: c.hash for c in kept if c.tampered is None}, anchor)
    after = anchor.seq
    while True:
        rows = await conn.fetch(_BATCH, after, batch_size, upto)
        for row in rows:
            broken = walk.check(row["seq"], row["prev_hash"], row["hash"], row["recomputed"])
            if broken is not None:
                return ChainReport(walk.sound(broken), head["last_seq"], broken, anchor.seq)
        if on_progress is not None:
            on_progress(walk.expected - 1 - anchor.seq, head["last_seq"] - anchor.seq)
        if len(rows) < batch_size:
            break
        after = rows[-1]["seq"]
    broken = walk.check_head(head["last_seq"], head["last_hash"])
    if broken is None and not snapshot:
        last = await conn.fetchval(_BEYOND_HEAD)
        if last is not None:
            broken = BrokenLink(
                last + 1, "inserted", f"events after the head's last ({last}) were added"
            )
    return ChainReport(walk.sound(broken), head["last_seq"], broken, anchor.seq)
