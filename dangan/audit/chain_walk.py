"""Walking a tenant's audit chain in order: the next number expected and the hash it
must carry, checked event by event against the checkpoints it should hold; the first
broken link found is named (what each finding means: :mod:`dangan.audit.verify`).
Used by verify, by the prune on the stretch it deletes and by the checkpoint writer on
the events since the last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from dangan.audit.anchor import NOTHING_PRUNED, Anchor

# The events after $1 up to $2, at most $3, each with its hash recomputed.
STRETCH = (
    "SELECT seq, prev_hash, hash, at,"
    " audit_event_hash(e, encode(sha256(e.customers), 'hex')) AS recomputed FROM audit_event e"
    " WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
)


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    problem: str  # missing | edited | unlinked | inserted | head | checkpoint | s3 | anchor
    message: str


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
