"""Which events returned a customer: the ``audit_access`` index and its exact reading.

An event keeps the customers it returned packed in one ``bytea`` (cheap to write, see
:mod:`dangan.audit.collector`), which no index can search. ``audit_access`` holds one
``(customer_id, seq)`` row per customer of each event, filled after the fact by
:func:`catch_up` (an arq cron, every minute): the request path writes nothing more than
before. ``audit_access_progress.indexed_seq`` says up to which event the index is filled;
:func:`customer_events` reads the index up to there and scans only the events after
it, in the same snapshot, so its answer is exact whether or not the job has caught up.

Events are numbered under the lock of ``audit_head`` and commit in that order (the next
writer waits for the lock until the previous one committed or rolled back), so once an
event is visible every event before it is too: an index filled up to a visible event
has missed nothing below it.

The mark holds that event's hash too. Should the chain be rewound or rewritten below
the mark (a restore, or tampering that ``dangan audit verify`` reports), the event there
no longer has that hash: readers then scan every event, and the next catch-up rebuilds
the index from the start. Rows of removed events go with them (ON DELETE CASCADE).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from dangan.authz.predicates import Predicate
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

BATCH_EVENTS = 500
INDEX_VERSION = 9  # the tenant schema version that created audit_access

_NEXT_BATCH = (
    "SELECT max(seq) AS upto, count(*) AS events"
    " FROM (SELECT seq FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT $2) s"
)
_INDEX_BATCH = (
    "INSERT INTO audit_access (customer_id, seq)"
    " SELECT DISTINCT c.id, e.seq FROM audit_event e,"
    " audit_event_customers(e.customers) AS c(id)"
    " WHERE e.seq > $1 AND e.seq <= $2 AND length(e.customers) > 0"
    " ON CONFLICT DO NOTHING"
)


# The progress mark while the event there still has the hash it was indexed with, else 0.
_MARK = (
    "coalesce((SELECT p.indexed_seq FROM audit_access_progress p JOIN audit_event m"
    " ON m.seq = p.indexed_seq AND m.hash = p.indexed_hash), 0)"
)


@dataclass(frozen=True)
class CatchUp:
    indexed_seq: int  # the index is complete up to this event
    events: int  # events indexed by this run


async def _index_next_batch(batch_events: int) -> tuple[int, int]:
    """Index the next events after the progress mark, in the open tenant transaction;
    returns (the new mark, how many events). The progress row is locked: two runs
    take turns."""
    conn = raw_connection()
    mark = await conn.fetchrow(
        "SELECT p.indexed_seq, p.indexed_hash = e.hash AS holds FROM audit_access_progress p"
        " LEFT JOIN audit_event e ON e.seq = p.indexed_seq FOR UPDATE OF p"
    )
    done: int = mark["indexed_seq"]
    moved = bool(done) and not mark["holds"]
    if moved:  # the chain changed below the mark: start over
        await conn.execute("DELETE FROM audit_access")
        done = 0
    batch = await conn.fetchrow(_NEXT_BATCH, done, batch_events)
    if not batch["events"] and not moved:
        return done, 0
    upto = int(batch["upto"] or 0)
    await conn.execute(_INDEX_BATCH, done, upto)
    await conn.execute(
        "UPDATE audit_access_progress SET indexed_seq = $1,"
        " indexed_hash = coalesce((SELECT hash FROM audit_event WHERE seq = $1), '')",
        upto,
    )
    return upto, int(batch["events"])


async def catch_up(tenant: TenantRef, *, batch_events: int = BATCH_EVENTS) -> CatchUp:
    """Index ``tenant``'s events not indexed yet, ``batch_events`` per transaction (an
    interrupted run keeps what it committed; the next one goes on from there)."""
    events = 0
    while True:
        indexed, count = await run_in_tenant(tenant, lambda: _index_next_batch(batch_events))
        events += count
        if count < batch_events:
            return CatchUp(indexed, events)


def customer_events(customer: uuid.UUID) -> Predicate:
    """The numbers of the events that returned ``customer``, newest first, as a FROM
    item ``c(seq)``: the index up to its mark, and the events after the mark scanned
    (``position`` finds the 16 bytes cheaply; the unpacked ids confirm them on a 16-byte
    boundary). The two parts never overlap. Sorted here (numbers only, from an
    index-only scan), the events themselves are then read only as far as a page needs."""
    return Predicate(
        "(SELECT seq FROM (SELECT a.seq FROM audit_access a"
        f" WHERE a.customer_id = ? AND a.seq <= {_MARK}"
        f" UNION ALL SELECT t.seq FROM audit_event t WHERE t.seq > {_MARK}"
        " AND position(?::bytea IN t.customers) > 0"
        " AND ?::uuid IN (SELECT audit_event_customers(t.customers))) u"
        " ORDER BY seq DESC) AS c",
        (customer, customer.bytes, customer),
    )
