"""Destroyed stays destroyed: what a restore brings back that a destruction record says
was destroyed is deleted again, in the restore's transaction.

A backup holds what was destroyed after it was taken. A restore over the tenant carries
the destruction records written since into the restored schema
(:mod:`dangan.tenants.carrying_retention`) and then calls :func:`destroy_again` there
with all of its records (those of the backup's time name nothing it still holds, unless
an earlier restore, before records were carried, brought it back): every customer,
communication and share request whose id a record names (its keyed hash, computed by
PostgreSQL over each table, one statement per record type that has records:
:class:`~.records.HashedIds`) is deleted
the way the purge deleted it (:func:`~.destruction.remove_customers` and the others:
a customer with everything it held and the share requests left with no customer, a
communication with its change records, a share request with its list and history).
Attachment files are queued for removal under the record that destroyed them, and the
restore leaves them out of the files it puts back. No new record is written — the
carried one is the record — and the restore's ``backup.restore`` event says how many
were destroyed again, by record type, and by which records.

A customer destroyed after the backup may be under a legal hold in the backup: one
released before the destruction (a purge never destroys a held customer, and the
release went with the customer), so that hold goes with it rather than stop it.

A restore into a new tenant (a copy to look at) does the same with the live tenant's
records, which stay the live tenant's (the copy's event names how many matched); the
files are the live tenant's and are not queued in the copy.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dangan.services.retention.destruction import (
    Removal,
    queue_object_removals,
    remove_communications,
    remove_customers,
    remove_share_request,
)
from dangan.services.retention.records import HashedIds
from dangan.tenants.scope import raw_connection

# A record's type is the table its subject_hashes name rows of.
RECORD_TYPES = ("customer", "communication", "share_request")
Remove = Callable[[list[uuid.UUID]], Awaitable[Removal]]


@dataclass(frozen=True)
class Destroyed:
    """What one destruction record says it destroyed (ids as keyed hashes)."""

    record_id: int
    record_type: str
    customer_hash: str | None
    subject_hashes: tuple[str, ...]


async def destruction_subjects() -> list[Destroyed]:
    """The destruction records of the open tenant transaction's schema, oldest first."""
    rows = await raw_connection().fetch(
        "SELECT id, record_type, customer_hash, subject_hashes FROM destruction_record ORDER BY id"
    )
    return [
        Destroyed(row["id"], row["record_type"], row["customer_hash"], tuple(row["subject_hashes"]))
        for row in rows
    ]


@dataclass
class Redestruction:
    """What :func:`destroy_again` deleted: subjects by record type, rows by table, the
    records that named them, and the attachment files to keep out of the bucket."""

    subjects: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    records: list[int] = field(default_factory=list)
    object_keys: list[str] = field(default_factory=list)

    def by_type(self) -> dict[str, int]:
        return {kind: self.subjects[kind] for kind in RECORD_TYPES}

    def details(self) -> dict[str, Any]:
        """For the ``backup.restore`` event: counts and record numbers, never an id."""
        return {
            "destroyedAgain": self.by_type(),
            "destroyedAgainRows": dict(sorted((t, n) for t, n in self.rows.items() if n)),
            "destroyedAgainBy": self.records,
            "filesKeptOut": len(self.object_keys),
        }


async def _matching(table: str, hashes: set[str], keys: HashedIds) -> dict[str, uuid.UUID]:
    """The rows of ``table`` whose id hashes to one of ``hashes``: hash -> id."""
    if not hashes:
        return {}
    hashed = HashedIds.sql("id", "$2", "$3")
    rows = await raw_connection().fetch(
        f"SELECT t.id, t.h FROM (SELECT id, {hashed} AS h FROM {table}) t"
        " JOIN unnest($1::text[]) AS w(h) ON w.h = t.h",
        sorted(hashes),
        keys.inner,
        keys.outer,
    )
    return {row["h"]: row["id"] for row in rows}


def _wanted(records: Sequence[Destroyed], kind: str) -> set[str]:
    return {h for record in records if record.record_type == kind for h in record.subject_hashes}


async def destroy_again(
    secret_key: str, records: Sequence[Destroyed], *, queue_files: bool
) -> Redestruction:
    """Delete, in the open tenant transaction, every row that one of ``records`` says
    was destroyed (see the module's docstring); ``queue_files``: queue the attachment
    files of the customers deleted for removal under their record (a restore over the
    tenant; not a copy, whose files are the live tenant's)."""
    done = Redestruction()
    if not records:
        return done
    keys = HashedIds.under(secret_key)
    found = {kind: await _matching(kind, _wanted(records, kind), keys) for kind in RECORD_TYPES}
    matched: set[int] = set()
    for record in records:
        rows = found.get(record.record_type, {})
        present = [rows[h] for h in record.subject_hashes if h in rows]
        if not present:
            continue
        if record.record_type == "customer":
            removal = await _customers(present, record.customer_hash, found["customer"])
            if queue_files:
                await queue_object_removals(removal.object_keys, record.record_id)
        elif record.record_type == "communication":
            removal = await _still_there("communication", present, remove_communications)
        else:
            removal = await _still_there("share_request", present, _shares)
        if removal.subjects:
            matched.add(record.record_id)
            done.subjects[record.record_type] += len(removal.subjects)
            done.rows.update(removal.counts)
            done.object_keys += removal.object_keys
    done.records = sorted(matched)
    return done


async def _customers(
    present: list[uuid.UUID], customer_hash: str | None, by_hash: dict[str, uuid.UUID]
) -> Removal:
    """The record's customers still in the schema (the one it was about first), with
    the legal holds the backup had on them: released before the destruction."""
    conn = raw_connection()
    first = by_hash.get(customer_hash or "")
    ids = [first] if first in present else []
    ids += [uid for uid in present if uid != first]
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)"
            " WHERE EXISTS (SELECT 1 FROM customer c WHERE c.id = u.id) ORDER BY n",
            ids,
        )
    ]
    if not ids:
        return Removal({}, [], [])
    holds = await conn.fetchval(
        "WITH gone AS (DELETE FROM legal_hold WHERE customer_id = ANY($1::uuid[]) RETURNING 1)"
        " SELECT count(*) FROM gone",
        ids,
    )
    removal = await remove_customers(ids)
    if holds:
        removal.counts["legal_hold"] = removal.counts.get("legal_hold", 0) + holds
    return removal


async def _shares(ids: list[uuid.UUID]) -> Removal:
    counts: Counter[str] = Counter()
    for share in ids:
        counts.update((await remove_share_request(share)).counts)
    return Removal(dict(counts), list(ids), [])


async def _still_there(table: str, ids: list[uuid.UUID], remove: Remove) -> Removal:
    """Remove those of ``ids`` that an earlier deletion (a customer's) left."""
    left = [
        row["id"]
        for row in await raw_connection().fetch(
            f"SELECT id FROM {table} WHERE id = ANY($1::uuid[]) ORDER BY id", ids
        )
    ]
    if not left:
        return Removal({}, [], [])
    return await remove(left)
