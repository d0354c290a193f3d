"""Retention of the audit trail: old events leave the database, oldest first, and only
up to an event a signed checkpoint in S3 vouches for.

- How long: ``DANGAN_AUDIT_RETENTION_DAYS`` (at least 180), or a tenant's own longer
  retention (``audit_anchor.retention_days``): the larger applies.
- How far: up to a sound checkpoint written before the cutoff (now minus the retention).
  A checkpoint is written after the events it covers, so all of them are older still;
  each is checked too. The pruned stretch is verified first — hashes recomputed, links,
  the checkpoint's hash — so a prune never deletes the evidence of tampering: it keeps
  the stretch that holds it (pruning at most up to a checkpoint before it) and says
  what it found (recorded with error code ``CHAIN_BROKEN``).
- How: each transaction deletes from the anchor through one or more checkpoints (about
  ``batch_events`` events, at least one checkpoint's stretch), moves the anchor to the
  last of them and records ``audit.prune``: the deletion, the new start of the chain and
  its record land together, and the anchor is always at a checkpoint. Rows of tables
  that reference ``audit_event(seq)`` go with their event (ON DELETE CASCADE).
- Then the checkpoint objects before the anchor are removed once their lock has run
  out, and the anchor's own checkpoint is locked again (verify checks the chain's
  start against it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dangan.audit.actions import ActionLog
from dangan.audit.anchor import Anchor, move_anchor, read_anchor
from dangan.audit.chain_walk import STRETCH, BrokenLink, ChainWalk
from dangan.audit.checkpoints import (
    Checkpoint,
    CheckpointStore,
    keep_checkpoint,
    list_checkpoints,
    remove_checkpoints_before,
)
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

ACTION = "audit.prune"
BROKEN_CODE = "CHAIN_BROKEN"
BATCH_EVENTS = 50_000
_READ = 5000
Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class PruneReport:
    tenant: str
    retention_days: int
    cutoff: datetime  # events and checkpoints before this may go
    anchor_before: int
    anchor_after: int  # the chain now starts after this event
    events: int  # events pruned (dry run: that would be)
    dry_run: bool
    refused: BrokenLink | None = None  # why pruning stopped short
    checkpoints_removed: int = 0  # checkpoint object versions removed (dry run: to look at)
    checkpoints_locked: int = 0  # older than the anchor but still locked: kept for now


class _Refused(Exception):
    def __init__(self, broken: BrokenLink) -> None:
        super().__init__(broken.message)
        self.broken = broken


def _targets(
    checkpoints: Sequence[Checkpoint], cutoff: datetime
) -> tuple[list[Checkpoint], BrokenLink | None]:
    """The checkpoints a prune may end at (sound, written before the cutoff), in order,
    none past a checkpoint tampered with in S3 (that is for a person to look at)."""
    old = [c for c in checkpoints if c.at is not None and c.at < cutoff]
    tampered = next((c for c in old if c.tampered is not None), None)
    if tampered is None:
        return old, None
    broken = BrokenLink(tampered.seq, "s3", f"checkpoint {tampered.seq}: {tampered.tampered}")
    return [c for c in old if c.seq < tampered.seq], broken


def _next_end(targets: Sequence[Checkpoint], after: int, batch_events: int) -> Checkpoint | None:
    """The furthest checkpoint within ``batch_events`` of ``after``, else the nearest."""
    ahead = [c for c in targets if c.seq > after]
    within = [c for c in ahead if c.seq - after <= batch_events]
    return within[-1] if within else (ahead[0] if ahead else None)


async def _check_stretch(anchor: Anchor, end: Checkpoint, cutoff: datetime) -> int:
    """Verify the events after ``anchor`` through ``end`` (in the open transaction):
    whole, unedited, linked, ending on the checkpoint's hash, all older than the
    cutoff. Returns how many there are; raises :class:`_Refused` naming the problem."""
    walk = ChainWalk({end.seq: end.hash}, anchor)
    after = anchor.seq
    while after < end.seq:
        rows = await raw_connection().fetch(STRETCH, after, end.seq, _READ)
        if not rows:
            break
        for row in rows:
            broken = walk.check(row["seq"], row["prev_hash"], row["hash"], row["recomputed"])
            if broken is not None:
                raise _Refused(broken)
            if row["at"] >= cutoff:
                raise _Refused(
                    BrokenLink(
                        row["seq"],
                        "checkpoint",
                        f"event {row['seq']} is younger than the cutoff though checkpoint"
                        f" {end.seq}, older than it, covers it",
                    )
                )
        after = rows[-1]["seq"]
    if after < end.seq:
        raise _Refused(
            BrokenLink(after + 1, "missing", f"events {after + 1}–{end.seq} are missing (deleted)")
        )
    return end.seq - anchor.seq


async def _prune_stretch(
    expected: Anchor,
    end: Checkpoint,
    cutoff: datetime,
    log: ActionLog,
    details: dict[str, object],
    dry_run: bool,
) -> tuple[Anchor, int]:
    """One transaction: check and delete the events after the anchor through ``end``,
    move the anchor there and record it. Returns the new anchor and the events pruned."""
    anchor = expected if dry_run else await read_anchor(lock=True)
    if anchor.seq >= end.seq:  # another prune got there first
        return anchor, 0
    count = await _check_stretch(anchor, end, cutoff)
    if dry_run:
        return Anchor(end.seq, end.hash), count
    await raw_connection().execute(
        "DELETE FROM audit_event WHERE seq > $1 AND seq <= $2", anchor.seq, end.seq
    )
    await move_anchor(end.seq, end.hash)
    await log.record(
        ACTION,
        details={**details, "events": count, "from": anchor.seq + 1, "through": end.seq},
    )
    return Anchor(end.seq, end.hash), count


async def prune_tenant(
    tenant: TenantRef,
    store: CheckpointStore,
    retention_days: int,
    log: ActionLog,
    *,
    dry_run: bool = False,
    batch_events: int = BATCH_EVENTS,
    on_progress: Progress | None = None,
) -> PruneReport:
    """Prune ``tenant``'s events older than its retention (``retention_days``, or the
    tenant's own if longer) up to the newest sound checkpoint older than that; then
    tidy the checkpoints before the new anchor. ``dry_run``: change nothing, report
    what would go. Safe to run twice and alongside itself (the anchor row is locked)."""

    async def start() -> tuple[Anchor, int, datetime]:
        anchor = await read_anchor()
        days = max(retention_days, anchor.retention_days or 0)
        cutoff = await raw_connection().fetchval("SELECT now() - make_interval(days => $1)", days)
        return anchor, days, cutoff

    first, days, cutoff = await run_in_tenant(tenant, start)
    checkpoints = await list_checkpoints(tenant, store, from_seq=first.seq + 1)
    targets, refused = _targets(checkpoints, cutoff)
    details: dict[str, object] = {"retentionDays": days, "cutoff": cutoff.isoformat()}
    total = targets[-1].seq - first.seq if targets else 0
    anchor, pruned = first, 0
    try:
        while (end := _next_end(targets, anchor.seq, batch_events)) is not None:

            async def stretch(anchor: Anchor = anchor, end: Checkpoint = end) -> tuple[Anchor, int]:
                return await _prune_stretch(anchor, end, cutoff, log, details, dry_run)

            try:
                anchor, count = await run_in_tenant(tenant, stretch)
            except _Refused as exc:
                # Keep what holds the problem; what a checkpoint before it covers may go.
                refused = exc.broken
                targets = [c for c in targets if c.seq < exc.broken.seq]
                continue
            pruned += count
            if on_progress is not None:
                await on_progress(anchor.seq - first.seq, total)
    except Exception as exc:
        if not dry_run:
            await log.record_failure(tenant, ACTION, exc, details=details)
        raise
    if refused is not None and not dry_run:
        await run_in_tenant(tenant, lambda: _record_refusal(log, refused, details))
    removal = await _tidy_checkpoints(tenant, store, anchor, dry_run=dry_run)
    return PruneReport(
        tenant=tenant.slug,
        retention_days=days,
        cutoff=cutoff,
        anchor_before=first.seq,
        anchor_after=anchor.seq,
        events=pruned,
        dry_run=dry_run,
        refused=refused,
        checkpoints_removed=removal[0],
        checkpoints_locked=removal[1],
    )


async def _record_refusal(log: ActionLog, broken: BrokenLink, details: dict[str, object]) -> None:
    """The prune stopped at what it found: an event with error ``CHAIN_BROKEN``."""
    await log.record(
        ACTION,
        details={
            **details,
            "stoppedAt": broken.seq,
            "problem": broken.problem,
            "message": broken.message,
        },
        error_codes=[BROKEN_CODE],
    )


async def _tidy_checkpoints(
    tenant: TenantRef, store: CheckpointStore, anchor: Anchor, *, dry_run: bool
) -> tuple[int, int]:
    """Renew the lock of the anchor's checkpoint (every run, so it holds while the
    anchor stays), and remove the checkpoints before it whose lock has run out."""
    if not anchor.pruned:
        return 0, 0
    if not dry_run:
        await keep_checkpoint(tenant, store, anchor.seq)
    removal = await remove_checkpoints_before(tenant, store, anchor.seq, dry_run=dry_run)
    return removal.removed, removal.locked
