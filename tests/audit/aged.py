"""A chain that looks as if it had been written over a year: events appended now, their
``at`` moved into the past and the chain re-hashed (``at`` is part of each hash, and
each hash part of the next), then checkpointed with the clock of that day.

Each stretch is aged before the next is appended, so every later event links to the
re-hashed one before it and the whole chain verifies as if written back then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dangan.audit.chain import GENESIS_HASH, append_event
from dangan.audit.checkpoints import CheckpointStore, write_checkpoint
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.audit.test_chain import _event

_RELINK = (
    "UPDATE audit_event SET prev_hash = coalesce((SELECT hash FROM audit_event"
    " WHERE seq = $1 - 1), $2) WHERE seq = $1"
)
_REHASH = (
    "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers), 'hex'))"
    " WHERE seq = $1"
)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def append_aged(tenant: TenantRef, first: int, last: int, at: datetime) -> None:
    """Append events ``first``–``last`` as written at ``at`` (a second apart)."""

    async def append() -> None:
        conn = raw_connection()
        for n in range(first, last + 1):
            await append_event(conn, _event(n))
        await conn.execute(
            "UPDATE audit_event SET at = $1::timestamptz + (seq - $2) * interval '1 second'"
            " WHERE seq BETWEEN $2 AND $3",
            at,
            first,
            last,
        )
        for seq in range(first, last + 1):
            await conn.execute(_RELINK, seq, GENESIS_HASH)
            await conn.execute(_REHASH, seq)
        await conn.execute(
            "UPDATE audit_head SET last_hash = (SELECT hash FROM audit_event WHERE seq = $1)",
            last,
        )

    await run_in_tenant(tenant, append)


async def checkpoint_at(tenant: TenantRef, store: CheckpointStore, at: datetime) -> int:
    """Checkpoint the head as the cron would have on that day (locked from then on)."""
    written = await write_checkpoint(tenant, store, now=at)
    assert written is not None
    return written.seq


async def aged_chain(tenant: TenantRef, store: CheckpointStore) -> None:
    """Events 1–4 of 400 days ago (checkpoint 4), 5–8 of 300 days ago (checkpoint 8),
    9–12 of 10 days ago (checkpoint 12), 13–14 of today (no checkpoint yet)."""
    for first, last, age in ((1, 4, 400), (5, 8, 300), (9, 12, 10)):
        await append_aged(tenant, first, last, days_ago(age))
        assert await checkpoint_at(tenant, store, days_ago(age) + timedelta(minutes=5)) == last

    async def today() -> None:
        for n in (13, 14):
            await append_event(raw_connection(), _event(n))

    await run_in_tenant(tenant, today)
