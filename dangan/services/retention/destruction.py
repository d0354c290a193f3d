"""Phase 2 of a retention run: destroy what is past its grace period, one transaction
per customer (or per share request), with its destruction record.

In that transaction the customer (or share request) is locked, its due candidates are
checked again — the rule still applies at the run's clock, no legal hold protects it,
approved if the rule requires it — and only then:

- a customer goes with everything that references it (every such foreign key cascades:
  :data:`CUSTOMER_REFERENCES`), with the customers merged into it (their rows went to it
  when they were merged) and the share requests left with no customer; its attachment
  files are queued for removal from S3 after the commit (:mod:`.objects`);
- a customer's old communications go with their change records; the customer stays;
- a share request goes with its customers' list and its history.

The destruction record and its ``purge.destroy`` audit event are written in the same
transaction. A candidate no longer due is unmarked with its reason; one waiting for an
approval stays marked.

What each kind of destruction deletes is :func:`remove_customers`,
:func:`remove_communications` and :func:`remove_share_request`: a restore deletes again
with them what a record says was destroyed after its backup (:mod:`.redestruction`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dangan.audit.actions import ActionLog
from dangan.services.retention.marking import CandidateLine, subjects, unmark
from dangan.services.retention.records import Destruction, subject_hash, write_record
from dangan.services.retention.rules import RetentionRule, load_rules
from dangan.tenants.scope import raw_connection

# Every table with a foreign key to customer(id), and that column (all ON DELETE
# CASCADE; a test compares this list with the database's catalogue).
CUSTOMER_REFERENCES: tuple[tuple[str, str], ...] = (
    ("contact_person", "customer_id"),
    ("communication", "customer_id"),
    ("opportunity", "customer_id"),
    ("purchase", "customer_id"),
    ("contract", "customer_id"),
    ("payment_record", "customer_id"),
    ("customer_need", "customer_id"),
    ("complaint", "customer_id"),
    ("satisfaction_survey", "customer_id"),
    ("attachment", "customer_id"),
    ("customer_change", "customer_id"),
    ("customer_rating", "customer_id"),
    ("field_reveal", "customer_id"),
    ("share_request_customer", "customer_id"),
    ("customer_merge", "survivor_id"),
    ("legal_hold", "customer_id"),
    ("retention_candidate", "customer_id"),
)
_COUNTS = "SELECT " + ", ".join(
    f"(SELECT count(*) FROM {table} WHERE {column} = ANY($1::uuid[])) AS {table}"
    for table, column in CUSTOMER_REFERENCES
)
_MERGED = """
WITH RECURSIVE merged(id) AS (
    SELECT id FROM customer WHERE merged_into = $1
    UNION SELECT c.id FROM customer c JOIN merged m ON c.merged_into = m.id)
SELECT id FROM merged"""
# Share requests naming only customers about to go.
_EMPTIED_SHARES = """
SELECT r.id, (SELECT count(*) FROM share_event e WHERE e.request_id = r.id) AS events
  FROM share_request r
 WHERE EXISTS (SELECT 1 FROM share_request_customer rc
                WHERE rc.request_id = r.id AND rc.customer_id = ANY($1::uuid[]))
   AND NOT EXISTS (SELECT 1 FROM share_request_customer rc
                    WHERE rc.request_id = r.id AND NOT rc.customer_id = ANY($1::uuid[]))"""
_CANDIDATE_COLUMNS = (
    "id, rule, record_type, record_id, customer_id, basis_at, reason, marked_at, due_at,"
    " approved_by, approved_at"
)

MERGED_HELD = "a legal hold protects a customer merged into it"
Status = Literal["destroyed", "would_destroy", "awaiting_approval", "unmarked", "gone"]


@dataclass(frozen=True)
class DueGroup:
    """Due candidates destroyed together: a customer, a customer's communications, or a
    share request (``key``: the customer's or the share request's id)."""

    rule: RetentionRule
    record_type: str
    key: uuid.UUID
    candidate_ids: tuple[int, ...]


@dataclass(frozen=True)
class Purger:
    """Who destroys, for the record: the audit log, and the run's origin."""

    secret_key: str
    log: ActionLog
    origin: Literal["job", "cli"]
    operator: str | None = None


@dataclass
class GroupOutcome:
    group: DueGroup
    status: Status
    counts: dict[str, int] = field(default_factory=dict)
    destroyed: list[CandidateLine] = field(default_factory=list)  # or would be
    waiting: list[CandidateLine] = field(default_factory=list)  # for an approval
    unmarked: list[CandidateLine] = field(default_factory=list)
    record_id: int | None = None
    objects_queued: int = 0


async def due_groups(rules: Mapping[str, RetentionRule], as_of: datetime) -> list[DueGroup]:
    """Marked candidates of enabled rules whose grace period is over at ``as_of``,
    grouped for their transactions (oldest due first)."""
    rows = await raw_connection().fetch(
        "SELECT id, rule, record_type, record_id, customer_id FROM retention_candidate"
        " WHERE status = 'marked' AND due_at <= $1 ORDER BY due_at, id",
        as_of,
    )
    grouped: dict[tuple[str, uuid.UUID], list[Any]] = {}
    for row in rows:
        rule = rules.get(row["rule"])
        if rule is None or not rule.enabled:
            continue
        by_customer = row["record_type"] in ("customer", "communication")
        key = row["customer_id"] if by_customer else row["record_id"]
        grouped.setdefault((row["rule"], key), []).append(row)
    return [
        DueGroup(
            rule=rules[rule],
            record_type=members[0]["record_type"],
            key=key,
            candidate_ids=tuple(member["id"] for member in members),
        )
        for (rule, key), members in grouped.items()
    ]


async def _lock(group: DueGroup, dry_run: bool) -> bool:
    """Lock what the group concerns (not in a dry run); False if it no longer exists."""
    conn = raw_connection()
    lock = "" if dry_run else " FOR UPDATE"
    if group.record_type == "share_request":
        found = await conn.fetchval(f"SELECT 1 FROM share_request WHERE id = $1{lock}", group.key)
        if found and not dry_run:
            # A hold placed on one of its customers meanwhile waits for this transaction.
            await conn.execute(
                "SELECT 1 FROM customer c JOIN share_request_customer rc"
                " ON rc.customer_id = c.id WHERE rc.request_id = $1 FOR SHARE OF c",
                group.key,
            )
        return bool(found)
    return bool(await conn.fetchval(f"SELECT 1 FROM customer WHERE id = $1{lock}", group.key))


async def _approver(rows: Sequence[Any]) -> tuple[int | None, str | None, datetime | None]:
    approved = [row for row in rows if row["approved_by"] is not None]
    if not approved:
        return None, None, None
    latest = max(approved, key=lambda row: row["approved_at"])
    name = await raw_connection().fetchval(
        "SELECT display_name FROM member WHERE identity_id = $1", latest["approved_by"]
    )
    return latest["approved_by"], name, latest["approved_at"]


async def destroy_group(
    group: DueGroup,
    as_of: datetime,
    purger: Purger | None,
    *,
    dry_run: bool,
    operator_clock: bool = False,
) -> GroupOutcome:
    """Check the group again and destroy what still falls due, with its record, in the
    open transaction (``dry_run``: say what would go, change nothing; no ``purger``
    needed). ``operator_clock``: ``as_of`` is an operator's, not the time of the run."""
    if purger is None and not dry_run:
        raise ValueError("destroying needs a purger (who destroys, for the record)")
    outcome = GroupOutcome(group=group, status="gone")
    if not await _lock(group, dry_run):
        return outcome
    conn = raw_connection()
    lock = "" if dry_run else " FOR UPDATE"
    rows = await conn.fetch(
        f"SELECT {_CANDIDATE_COLUMNS} FROM retention_candidate"
        f" WHERE id = ANY($1::bigint[]) AND status = 'marked' ORDER BY id{lock}",
        list(group.candidate_ids),
    )
    if not rows:
        return outcome
    rule = (await load_rules())[group.rule.rule]
    found = await subjects(rule, as_of, [row["record_id"] for row in rows]) if rule.enabled else []
    applying = {row["record_id"] for row in found}
    merged: list[uuid.UUID] = []
    if group.record_type == "customer" and applying:
        merged = [row["id"] for row in await conn.fetch(_MERGED, group.key)]
        if await _any_held(merged):
            outcome.unmarked = await unmark(rule, rows, as_of, dry_run=dry_run, reason=MERGED_HELD)
            outcome.status = "unmarked"
            return outcome
    stale = [row for row in rows if row["record_id"] not in applying]
    outcome.unmarked = await unmark(rule, stale, as_of, dry_run=dry_run)
    live = [row for row in rows if row["record_id"] in applying]
    ready = [row for row in live if row["approved_by"] is not None or not rule.requires_approval]
    ready_ids = {row["id"] for row in ready}
    outcome.waiting = [
        CandidateLine.from_row(rule.rule, row) for row in live if row["id"] not in ready_ids
    ]
    if not ready:
        outcome.status = "awaiting_approval" if outcome.waiting else "unmarked"
        return outcome
    outcome.destroyed = [CandidateLine.from_row(rule.rule, row) for row in ready]
    if group.record_type == "customer":
        removal = await remove_customers([group.key, *merged], dry_run=dry_run)
    elif group.record_type == "communication":
        removal = await remove_communications([row["record_id"] for row in ready], dry_run=dry_run)
    else:
        removal = await remove_share_request(group.key, dry_run=dry_run)
    outcome.counts = removal.counts
    keys = removal.object_keys
    if dry_run or purger is None:  # (never both False and None: checked above)
        outcome.status = "would_destroy"
        outcome.objects_queued = len(keys)
        return outcome
    approved_by, approver, approved_at = await _approver(ready)
    destruction = Destruction(
        rule=rule.rule,
        record_type=group.record_type,
        reason=_reason(rule, group.record_type, ready),
        counts=outcome.counts,
        customer_hash=(
            subject_hash(purger.secret_key, group.key)
            if group.record_type != "share_request"
            else None
        ),
        subject_hashes=[subject_hash(purger.secret_key, i) for i in removal.subjects],
        marked_at=min(row["marked_at"] for row in ready),
        due_at=max(row["due_at"] for row in ready),
        approved_by=approved_by,
        approved_by_name=approver,
        approved_at=approved_at,
        as_of=as_of,
        operator_clock=operator_clock,
        destroyed_at=await conn.fetchval("SELECT now()"),
        origin=purger.origin,
        operator=purger.operator,
    )
    outcome.record_id = await write_record(destruction, purger.log)
    await queue_object_removals(keys, outcome.record_id)
    outcome.objects_queued = len(keys)
    outcome.status = "destroyed"
    return outcome


async def _any_held(customer_ids: Sequence[uuid.UUID]) -> bool:
    return bool(
        customer_ids
        and await raw_connection().fetchval(
            "SELECT EXISTS (SELECT 1 FROM legal_hold WHERE customer_id = ANY($1::uuid[])"
            " AND released_at IS NULL)",
            list(customer_ids),
        )
    )


def _reason(rule: RetentionRule, record_type: str, ready: Sequence[Any]) -> str:
    terms = f"rule {rule.rule}: {rule.period}, {rule.grace_days} days' notice"
    if record_type == "communication":
        first = min(row["basis_at"] for row in ready).date().isoformat()
        last = max(row["basis_at"] for row in ready).date().isoformat()
        return f"{len(ready)} communication(s) of {first} to {last} ({terms})"
    return f"{ready[0]['reason']} ({terms})"


@dataclass(frozen=True)
class Removal:
    """What a destruction deletes (or would): the rows by table, the ids its record names
    (as hashes), and the attachment files left to remove from S3 after the commit."""

    counts: dict[str, int]
    subjects: list[uuid.UUID]
    object_keys: list[str]


async def queue_object_removals(keys: Sequence[str], record_id: int) -> None:
    """Queue attachment files for removal after the commit, under the record that
    destroyed them (:mod:`.objects` removes them)."""
    if keys:
        await raw_connection().execute(
            "INSERT INTO retention_object_removal (object_key, record_id)"
            " SELECT key, $2 FROM unnest($1::text[]) AS k(key) ON CONFLICT DO NOTHING",
            list(keys),
            record_id,
        )


async def remove_customers(ids: Sequence[uuid.UUID], *, dry_run: bool = False) -> Removal:
    """A customer (``ids[0]``) and the customers merged into it (the rest), with
    everything they hold and the share requests left with no customer; their attachment
    files are returned to be queued. The caller has checked that no legal hold protects
    them (the database refuses otherwise)."""
    conn = raw_connection()
    ids = list(ids)
    counts = dict(await conn.fetchrow(_COUNTS, ids))
    emptied = await conn.fetch(_EMPTIED_SHARES, ids)
    keys = [
        row["object_key"]
        for row in await conn.fetch(
            "SELECT object_key FROM attachment WHERE customer_id = ANY($1::uuid[])"
            " ORDER BY object_key",
            ids,
        )
    ]
    counts = {
        "customer": 1,
        "merged_customer": len(ids) - 1,
        **counts,
        "share_request": len(emptied),
        "share_event": sum(row["events"] for row in emptied),
    }
    if not dry_run:
        shares = [row["id"] for row in emptied]
        await conn.execute(
            "DELETE FROM retention_candidate WHERE record_id = ANY($1::uuid[])", shares
        )
        await conn.execute("DELETE FROM share_request WHERE id = ANY($1::uuid[])", shares)
        await conn.execute("DELETE FROM customer WHERE id = ANY($1::uuid[])", ids)
    return Removal(counts, ids, keys)


async def remove_communications(ids: Sequence[uuid.UUID], *, dry_run: bool = False) -> Removal:
    """Communications and their change records (their customer stays)."""
    conn = raw_connection()
    ids = list(ids)
    changes = await conn.fetchval(
        "SELECT count(*) FROM customer_change WHERE record_type = 'communication'"
        " AND record_id = ANY($1::uuid[])",
        ids,
    )
    if not dry_run:
        await conn.execute(
            "DELETE FROM customer_change WHERE record_type = 'communication'"
            " AND record_id = ANY($1::uuid[])",
            ids,
        )
        await conn.execute("DELETE FROM communication WHERE id = ANY($1::uuid[])", ids)
        await conn.execute("DELETE FROM retention_candidate WHERE record_id = ANY($1::uuid[])", ids)
    return Removal({"communication": len(ids), "customer_change": changes}, ids, [])


async def remove_share_request(share_id: uuid.UUID, *, dry_run: bool = False) -> Removal:
    """One share request with the list of its customers and its history."""
    conn = raw_connection()
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM share_request_customer WHERE request_id = $1) AS customers,"
        " (SELECT count(*) FROM share_event WHERE request_id = $1) AS events",
        share_id,
    )
    counts = {
        "share_request": 1,
        "share_request_customer": row["customers"],
        "share_event": row["events"],
    }
    if not dry_run:
        await conn.execute("DELETE FROM retention_candidate WHERE record_id = $1", share_id)
        await conn.execute("DELETE FROM share_request WHERE id = $1", share_id)
    return Removal(counts, [share_id], [])
