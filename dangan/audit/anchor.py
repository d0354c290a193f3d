"""Where a tenant's kept audit chain starts (tenant migration 11, ``audit_anchor``).

Pruning (:mod:`dangan.audit.retention`) deletes the oldest events up to one a signed
checkpoint in S3 vouches for, and records that event's (seq, hash) as the anchor, in
the same transaction. The first kept event carries the anchor's hash; ``verify_chain``
starts there and checks the anchor against its checkpoint, so an anchor moved by hand
(events deleted without a checkpoint covering them) shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dangan.audit.chain import GENESIS_HASH
from dangan.tenants.scope import raw_connection


@dataclass(frozen=True)
class Anchor:
    seq: int  # the last pruned event (0: nothing pruned)
    hash: str  # its hash (the genesis hash when nothing was pruned)
    pruned_at: datetime | None = None
    retention_days: int | None = None  # this tenant's own, longer retention (None: default)

    @property
    def pruned(self) -> bool:
        return self.seq > 0


NOTHING_PRUNED = Anchor(0, GENESIS_HASH)


async def read_anchor(*, lock: bool = False) -> Anchor:
    """The anchor of the open tenant transaction's chain (``lock``: until it ends, so
    two prunes take turns)."""
    row = await raw_connection().fetchrow(
        "SELECT seq, hash, pruned_at, retention_days FROM audit_anchor"
        + (" FOR UPDATE" if lock else "")
    )
    if row is None:
        raise RuntimeError("the tenant's audit anchor is missing")
    return Anchor(int(row["seq"]), str(row["hash"]), row["pruned_at"], row["retention_days"])


async def move_anchor(seq: int, hash_: str) -> None:
    """Record that the chain now starts after event ``seq`` (in the pruning transaction)."""
    await raw_connection().execute(
        "UPDATE audit_anchor SET seq = $1, hash = $2, pruned_at = now()", seq, hash_
    )


async def set_retention_days(days: int | None) -> None:
    """This tenant's own retention (None: the deployment's); the caller checks it is
    not below the deployment's."""
    await raw_connection().execute("UPDATE audit_anchor SET retention_days = $1", days)
