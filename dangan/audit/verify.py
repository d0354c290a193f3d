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

Without checkpoints, deleting the newest events and rewinding the head to match cannot
be seen from inside the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dangan.audit.chain import GENESIS_HASH
from dangan.audit.checkpoints import Checkpoint
from dangan.tenants.scope import TenantRef, TenantSession, raw_connection, tenant_transaction

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
class BrokenLink:
    seq: int
    problem: str  # missing | edited | unlinked | inserted | head | checkpoint | s3
    message: str


@dataclass(frozen=True)
class ChainReport:
    events: int  # events found sound, in order, before the first broken one
    head_seq: int
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class _Walk:
    """The chain read so far: the next number expected and the hash it must carry, and
    the last event a checkpoint vouches for."""

    def __init__(self, checkpoints: dict[int, str]) -> None:
        self.expected = 1
        self.prev_hash = GENESIS_HASH
        self.checkpoints = checkpoints
        self.anchored = 0

    def check(self, seq: int, prev_hash: str, hash_: str, recomputed: str) -> BrokenLink | None:
        if seq < self.expected:
            return BrokenLink(seq, "inserted", f"event {seq} is numbered out of order")
        if seq > self.expected:
            gap = f"{self.expected}" if seq == self.expected + 1 else f"{self.expected}–{seq - 1}"
            return BrokenLink(self.expected, "missing", f"event(s) {gap} are missing (deleted)")
        if recomputed != hash_:
            return BrokenLink(seq, "edited", f"event {seq} no longer matches its hash (edited)")
        if prev_hash != self.prev_hash:
            return BrokenLink(
                seq,
                "unlinked",
                f"event {seq} does not carry the hash of event {seq - 1} (an event before it"
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
        count = self.expected - 1
        if count < last_seq:
            return BrokenLink(
                count + 1,
                "missing",
                f"the head counts {last_seq} events but the chain ends at event {count}"
                " (the newest events were deleted)",
            )
        if count > last_seq:
            return BrokenLink(
                last_seq + 1, "inserted", f"events after the head's last ({last_seq}) were added"
            )
        if last_hash != self.prev_hash:
            return BrokenLink(count, "head", f"the head's hash is not that of event {count}")
        beyond = [seq for seq in self.checkpoints if seq > count]
        if beyond:
            return BrokenLink(
                min(beyond),
                "checkpoint",
                f"checkpoint {min(beyond)}: chain ends at {count} (the newest events were"
                " deleted and the head rewound)",
            )
        return None

    def sound(self, broken: BrokenLink | None) -> int:
        """How many events are sound before ``broken``: those a checkpoint vouches for,
        when the chain fails a checkpoint."""
        count = self.expected - 1
        if broken is None or broken.problem == "head":
            return count
        if broken.problem == "checkpoint":
            return min(count, self.anchored)
        return min(count, broken.seq - 1)


async def verify_chain(
    tenant: TenantRef,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
) -> ChainReport:
    """Walk ``tenant``'s chain in order, in batches, in one consistent snapshot (events
    appended meanwhile are neither seen nor reported), checking it holds ``checkpoints``
    (from :func:`dangan.audit.checkpoints.list_checkpoints`). The first broken link, in
    event order, is named: a checkpoint tampered with in S3 counts at its number."""
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
    tampered = next((c for c in checkpoints if c.tampered is not None), None)
    report = await _walk_chain(
        conn,
        {c.seq: c.hash for c in checkpoints if c.tampered is None},
        batch_size,
        on_progress,
        snapshot=snapshot,
    )
    if tampered is None or (report.broken is not None and report.broken.seq <= tampered.seq):
        return report
    broken = BrokenLink(tampered.seq, "s3", f"checkpoint {tampered.seq}: {tampered.tampered}")
    return ChainReport(min(report.events, tampered.seq - 1), report.head_seq, broken)


async def _walk_chain(
    conn: TenantSession,
    checkpoints: dict[int, str],
    batch_size: int,
    on_progress: ProgressCallback | None,
    *,
    snapshot: bool,
) -> ChainReport:
    """Walk the chain on ``conn``: in one ``snapshot`` (everything up to the end), or
    else up to the head read first, then whatever lies beyond the head at that moment."""
    head = await conn.fetchrow("SELECT last_seq, last_hash FROM audit_head")
    upto = _NO_BOUND if snapshot else head["last_seq"]
    walk = _Walk(checkpoints)
    after = 0
    while True:
        rows = await conn.fetch(_BATCH, after, batch_size, upto)
        for row in rows:
            broken = walk.check(row["seq"], row["prev_hash"], row["hash"], row["recomputed"])
            if broken is not None:
                return ChainReport(walk.sound(broken), head["last_seq"], broken)
        if on_progress is not None:
            on_progress(walk.expected - 1, head["last_seq"])
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
    return ChainReport(walk.sound(broken), head["last_seq"], broken)
