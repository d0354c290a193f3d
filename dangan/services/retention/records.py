"""The destruction record (销毁须登记): written in the transaction that destroys, never
changed after.

A record says which rule destroyed what (record type, counts of rows by table), why,
who approved it where the rule asks for an approval, the clock the rules were read
against (``as_of``: the run's start, or an operator's clock given to ``dangan purge run
--now``, which ``operator_clock`` says), when, and by what (the nightly job, or the command and the
operating-system user). It names nothing it destroyed: ids appear only as keyed hashes
(``hmac:…``, the audit trail's key, :func:`dangan.audit.redaction.keyed_hash`), enough
to answer "was this customer destroyed?" for someone who holds the id, useless to anyone
who does not.

Its ``record_hash`` (sha256 of its content) travels in the ``purge.destroy`` audit event
written with it. The table refuses UPDATE, DELETE and TRUNCATE (a trigger); the tenant
role owns it and could drop the trigger, but an edited record then no longer matches the
hash in the hash-chained trail (:func:`check_record`), and an edited event breaks the
chain (``dangan audit verify``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from dangan.audit.actions import ActionLog
from dangan.audit.redaction import HMAC_PREFIX, audit_key, keyed_hash
from dangan.authz.retention import check_retention_right
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.tenants.scope import raw_connection

DESTROY_ACTION = "purge.destroy"
COLUMNS = (
    "id, rule, record_type, reason, counts, customer_hash, subject_hashes, marked_at, due_at,"
    " approved_by, approved_by_name, approved_at, as_of, operator_clock, destroyed_at, origin,"
    " operator,"
    " record_hash, audit_seq"
)


def subject_hash(secret_key: str, record_id: uuid.UUID | str) -> str:
    """The keyed hash a destruction record keeps of an id (``hmac:<32 hex>``)."""
    hashed = keyed_hash(audit_key(secret_key), str(uuid.UUID(str(record_id))))
    assert hashed is not None
    return hashed


@dataclass(frozen=True)
class HashedIds:
    """:func:`subject_hash` computed by PostgreSQL, over a whole table in one statement
    (a restore looks for the rows a destruction record names). HMAC-SHA256 is built from
    ``sha256()``: the two padded keys go as parameters, never in the statement's text."""

    inner: bytes
    outer: bytes

    @classmethod
    def under(cls, secret_key: str) -> HashedIds:
        padded = audit_key(secret_key).ljust(64, b"\0")  # the key is shorter than a block
        return cls(bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded))

    @staticmethod
    def sql(column: str, inner: str, outer: str) -> str:
        """The expression of ``column``'s hash, given the placeholders of the keys."""
        message = f"convert_to({column}::text, 'UTF8')"
        digest = f"sha256({outer}::bytea || sha256({inner}::bytea || {message}))"
        return f"'{HMAC_PREFIX}' || left(encode({digest}, 'hex'), 32)"


@dataclass(frozen=True)
class Destruction:
    """What one destroying transaction records (everything but its number and hash)."""

    rule: str
    record_type: str
    reason: str
    counts: Mapping[str, int]
    customer_hash: str | None
    subject_hashes: Sequence[str]
    marked_at: datetime
    due_at: datetime
    approved_by: int | None
    approved_by_name: str | None
    approved_at: datetime | None
    as_of: datetime
    operator_clock: bool  # as_of was an operator's (dangan purge run --now), not the time
    destroyed_at: datetime
    origin: str  # job or cli
    operator: str | None  # the command's OS user


def _when(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def content_hash(record_id: int, values: Mapping[str, Any]) -> str:
    """sha256 of a record's content in a canonical form (sorted keys, UTC times)."""
    content = {
        "id": record_id,
        "rule": values["rule"],
        "recordType": values["record_type"],
        "reason": values["reason"],
        "counts": dict(values["counts"]),
        "customerHash": values["customer_hash"],
        "subjectHashes": list(values["subject_hashes"]),
        "markedAt": _when(values["marked_at"]),
        "dueAt": _when(values["due_at"]),
        "approvedBy": values["approved_by"],
        "approvedByName": values["approved_by_name"],
        "approvedAt": _when(values["approved_at"]),
        "asOf": _when(values["as_of"]),
        "operatorClock": values["operator_clock"],
        "destroyedAt": _when(values["destroyed_at"]),
        "origin": values["origin"],
        "operator": values["operator"],
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def write_record(destruction: Destruction, log: ActionLog) -> int:
    """Insert the record and its ``purge.destroy`` event (in the open transaction);
    returns the record's id. The event carries the record's id and hash, the record
    the event's number."""
    conn = raw_connection()
    record_id: int = await conn.fetchval(
        "SELECT nextval(pg_get_serial_sequence('destruction_record', 'id'))"
    )
    values = asdict(destruction)
    digest = content_hash(record_id, values)
    seq = await log.record(
        DESTROY_ACTION,
        details={
            "record": record_id,
            "rule": destruction.rule,
            "recordType": destruction.record_type,
            "counts": dict(destruction.counts),
            "recordHash": digest,
            "asOf": _when(destruction.as_of),
            "operatorClock": destruction.operator_clock,
            "approvedBy": destruction.approved_by,
        },
    )
    await conn.execute(
        "INSERT INTO destruction_record (id, rule, record_type, reason, counts, customer_hash,"
        " subject_hashes, marked_at, due_at, approved_by, approved_by_name, approved_at,"
        " as_of, operator_clock, destroyed_at, origin, operator, record_hash, audit_seq)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
        " $16, $17, $18, $19)",
        record_id,
        destruction.rule,
        destruction.record_type,
        destruction.reason,
        orjson.dumps(dict(destruction.counts)).decode(),
        destruction.customer_hash,
        list(destruction.subject_hashes),
        destruction.marked_at,
        destruction.due_at,
        destruction.approved_by,
        destruction.approved_by_name,
        destruction.approved_at,
        destruction.as_of,
        destruction.operator_clock,
        destruction.destroyed_at,
        destruction.origin,
        destruction.operator,
        digest,
        seq,
    )
    return record_id


def decoded(row: Any) -> dict[str, Any]:
    """A destruction_record row as a dict, ``counts`` decoded."""
    values = dict(row)
    counts = values["counts"]
    values["counts"] = orjson.loads(counts) if isinstance(counts, str | bytes) else counts
    return values


@dataclass(frozen=True)
class RecordCheck:
    """Whether a record is as it was written: its content against its own hash, and
    against the hash its audit event carries (None when the event has been pruned)."""

    matches_own_hash: bool
    matches_audit_event: bool | None

    @property
    def intact(self) -> bool | None:
        if not self.matches_own_hash or self.matches_audit_event is False:
            return False
        return self.matches_audit_event


async def check_records(rows: Sequence[Mapping[str, Any]]) -> dict[int, RecordCheck]:
    """Check records (decoded rows) against their hashes and their audit events, with
    one query for the events."""
    seqs = [row["audit_seq"] for row in rows]
    events = await raw_connection().fetch(
        "SELECT seq, variables->>'recordHash' AS record_hash, (variables->>'record')::bigint"
        " AS record FROM audit_event WHERE seq = ANY($1::bigint[])",
        seqs,
    )
    by_seq = {event["seq"]: event for event in events}
    checks: dict[int, RecordCheck] = {}
    for row in rows:
        digest = content_hash(row["id"], row)
        event = by_seq.get(row["audit_seq"])
        in_event = (
            None
            if event is None
            else event["record"] == row["id"] and event["record_hash"] == digest
        )
        checks[row["id"]] = RecordCheck(digest == row["record_hash"], in_event)
    return checks


MAX_PAGE = 500


@dataclass(frozen=True)
class RecordFilter:
    since: datetime | None = None  # destroyed at or after
    until: datetime | None = None  # destroyed before
    rule: str | None = None
    for_id: str | None = None  # records that destroyed this id (customer or record)


@dataclass(frozen=True)
class RecordView:
    values: dict[str, Any]
    check: RecordCheck
    objects_pending: int  # attachment files still queued for removal from S3


async def destruction_records(
    caller: Caller,
    secret_key: str,
    flt: RecordFilter,
    *,
    first: int = 100,
    offset: int = 0,
) -> list[RecordView]:
    """Destruction records, newest first, each checked against its hash and its audit
    event (for whoever the policy's ``can_read_destruction_records`` allows)."""
    await check_retention_right(caller, "can_read_destruction_records")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    if offset < 0:
        raise BadUserInput("offset must be 0 or more", field="offset")
    for name, value in (("since", flt.since), ("until", flt.until)):
        if value is not None and value.tzinfo is None:
            raise BadUserInput(f"{name} needs a time zone", field=name)
    hashed = None
    if flt.for_id is not None:
        try:
            hashed = subject_hash(secret_key, flt.for_id)
        except ValueError as exc:
            raise BadUserInput("forId is not an id", field="forId") from exc
    rows = await raw_connection().fetch(
        f"SELECT {COLUMNS}, (SELECT count(*) FROM retention_object_removal o"
        " WHERE o.record_id = d.id) AS objects_pending FROM destruction_record d"
        " WHERE ($1::timestamptz IS NULL OR destroyed_at >= $1)"
        " AND ($2::timestamptz IS NULL OR destroyed_at < $2)"
        " AND ($3::text IS NULL OR rule = $3)"
        " AND ($4::text IS NULL OR customer_hash = $4 OR $4 = ANY(subject_hashes))"
        " ORDER BY destroyed_at DESC, id DESC LIMIT $5 OFFSET $6",
        flt.since,
        flt.until,
        flt.rule,
        hashed,
        first,
        offset,
    )
    values = [decoded(row) for row in rows]
    pending = {v["id"]: v.pop("objects_pending") for v in values}
    checks = await check_records(values)
    return [RecordView(v, checks[v["id"]], pending[v["id"]]) for v in values]
