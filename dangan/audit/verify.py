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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dangan.audit.anchor import NOTHING_PRUNED, Anchor, read_anchor
from dangan.audit.checkpoints import Checkpoint, CheckpointStore, list_checkpoints
from dangan.audit.custody import select_checkpoints
from dangan.settings import MIN_AUDIT_RETENTION_DAYS
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant, tenant_transaction

ProgressCallback = Callable[[int, int], None]

_BATCH = (
    "SELECT seq, prev_hash, hash,"
    " audit_event_hash(e, encode(sha256(e.customers), 'hex')) AS recomputed FROM audit_event e"
    " WHERE seq > $1 ORDER BY seq LIMIT $2"
)


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    problem: str  # missing | edited | unlinked | inserted | head | checkpoint | s3 | anchor
    message: str


@dataclass(frozen=True)
class ChainReport:
    events: int  # events found sound, in order, before the first broken one
    head_seq: int
    broken: BrokenLink | None
    starts_at: int = 0  # the anchor: events up to this one were pruned (0: none)
    checkpoints_checked: int = 0  # checkpoints read from S3 and checked (verify_tenant)

    @property
    def ok(self) -> bool:
        return self.broken is None


class ChainWalk:
    """The chain read so far: the next number expected and the hash it must carry, and
    the last event a checkpoint vouches for. It starts after the anchor."""

    def __init__(self, checkpoints: dict[int, str], start: Anchor = NOTHING_PRUNED) -> None:
        self.start = start.seq
        self.expected = start.seq + 1
        self.prev_hash = start.hash
        self.checkpoints = {seq: hash_ for seq, hash_ in checkpoints.items() if seq > start.seq}
        self.anchored = start.seq

    def check(self, seq: int, prev_hash: str, hash_: str, recomputed: str) -> BrokenLink | None:
        if seq < self.expected:
            return BrokenLink(seq, "inserted", f"event {seq} is numbered out of order")
        if seq > self.expected:
            gap = f"{self.expected}" if seq == self.expected + 1 else f"{self.expected}–{seq - 1}"
            how = (
                " from the start of the chain, without moving the anchor to a checkpoint"
                if self.expected == self.start + 1
                else ""
            )
            return BrokenLink(
                self.expected, "missing", f"event(s) {gap} are missing (deleted{how})"
            )
        if recomputed != hash_:
            return BrokenLink(seq, "edited", f"event {seq} no longer matches its hash (edited)")
        if prev_hash != self.prev_hash:
            before = f"event {seq - 1}" + (" (the anchor)" if seq - 1 == self.start > 0 else "")
            return BrokenLink(
                seq,
                "unlinked",
                f"event {seq} does not carry the hash of {before} (an event before it"
                " was replaced, inserted or moved)",
            )
        kept = self.checkpoints.get(seq)
        if kept is not None:
            if kept != hash_:
                return BrokenLink(
                    seq,
                    "checkpoint",
                    f"checkpoint {seq}: hash differs (the chain was rewritten at or before"
                    f" event {seq})",
                )
            self.anchored = seq
        self.expected += 1
        self.prev_hash = hash_
        return None

    def check_head(self, last_seq: int, last_hash: str) -> BrokenLink | None:
        last = self.expected - 1
        if last < last_seq:
            return BrokenLink(
                last + 1,
                "missing",
                f"the head counts {last_seq} events but the chain ends at event {last}"
                " (the newest events were deleted)",
            )
        if last > last_seq:
            return BrokenLink(
                last_seq + 1, "inserted", f"events after the head's last ({last_seq}) were added"
            )
        if last_hash != self.prev_hash:
            return BrokenLink(last, "head", f"the head's hash is not that of event {last}")
        beyond = [seq for seq in self.checkpoints if seq > last]
        if beyond:
            return BrokenLink(
                min(beyond),
                "checkpoint",
                f"checkpoint {min(beyond)}: chain ends at {last} (the newest events were"
                " deleted and the head rewound)",
            )
        return None

    def sound(self, broken: BrokenLink | None) -> int:
        """How many events after the anchor are sound before ``broken``: those a
        checkpoint vouches for, when the chain fails a checkpoint."""
        last = self.expected - 1
        if broken is None or broken.problem == "head":
            through = last
        elif broken.problem == "checkpoint":
            through = min(last, self.anchored)
        else:
            through = min(last, broken.seq - 1)
        return max(0, through - self.start)


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
    report = await _walk_chain(tenant, checkpoints, batch_size, on_progress)
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
    older ones vouch for events no longer kept, and are not read). By default only the
    few that vouch for the others are read (:func:`select_checkpoints`); if one of
    them is tampered with, or the chain does not verify against them, every checkpoint
    is read and the chain verified again, so the first broken link is named exactly as
    ``thorough`` (every checkpoint read from the start) names it."""
    anchor = await run_in_tenant(tenant, read_anchor)
    if not thorough:
        few = await select_checkpoints(tenant, store, anchor.seq)
        if all(c.tampered is None for c in few):
            report = await verify_chain(
                tenant, checkpoints=few, batch_size=batch_size, on_progress=on_progress
            )
            if report.ok:
                return replace(report, checkpoints_checked=len(few))
    checkpoints = await list_checkpoints(tenant, store, from_seq=anchor.seq)
    report = await verify_chain(
        tenant, checkpoints=checkpoints, batch_size=batch_size, on_progress=on_progress
    )
    return replace(report, checkpoints_checked=len(checkpoints))


async def _walk_chain(
    tenant: TenantRef,
    checkpoints: Sequence[Checkpoint],
    batch_size: int,
    on_progress: ProgressCallback | None,
) -> ChainReport:
    async with tenant_transaction(tenant):
        conn = raw_connection()
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        anchor = await read_anchor()
        head = await conn.fetchrow("SELECT last_seq, last_hash, now() AS now FROM audit_head")
        kept = [c for c in checkpoints if c.seq >= anchor.seq]
        broken = check_anchor(anchor, kept, head["now"])
        if broken is not None:
            return ChainReport(0, head["last_seq"], broken, anchor.seq)
        walk = ChainWalk({c.seq: c.hash for c in kept if c.tampered is None}, anchor)
        after = anchor.seq
        while True:
            rows = await conn.fetch(_BATCH, after, batch_size)
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
        return ChainReport(walk.sound(broken), head["last_seq"], broken, anchor.seq)
