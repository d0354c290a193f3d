"""The per-tenant hash chain of audit events: appending one, in one statement.

Events are numbered from the single ``audit_head`` row (locked for the append), so the
chain has no gaps even when transactions roll back, and concurrent requests of one
tenant append one after another (the lock is held until their commit). The hash is
computed in SQL by ``audit_event_hash`` (tenant migration 7), the same function
``dangan audit verify`` recomputes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from dangan.tenants.scope import TenantSession

GENESIS_HASH = "0" * 64

# Columns given by the caller, in table order, with their SQL types.
_GIVEN = (
    ("request_id", "text"),
    ("actor_kind", "text"),
    ("actor_id", "integer"),
    ("actor_name", "text"),
    ("client_address", "text"),
    ("user_agent", "text"),
    ("operation_type", "text"),
    ("operation_name", "text"),
    ("document_sha256", "text"),
    ("variables", "jsonb"),
    ("outcome", "text"),
    ("error_codes", "text[]"),
    ("customers", "bytea"),
    ("fields", "jsonb"),
    ("changes", "jsonb"),
)
# Added by tenant version 8, so after the hash in table order.
_GIVEN_LATER = (("actions", "text[]"), ("actor_roles", "text[]"))
COLUMNS = (
    "seq",
    "at",
    *(name for name, _ in _GIVEN),
    "prev_hash",
    "hash",
    *(name for name, _ in _GIVEN_LATER),
)
_PARAMS = ", ".join(f"${n}::{kind}" for n, (_, kind) in enumerate(_GIVEN, start=1))
_CUSTOMERS_SHA256 = len(_GIVEN) + 1  # hashed here: 16 kB cost more to hash in SQL
_DURABILITY = len(_GIVEN) + 2  # the parameter: synchronous_commit for this transaction
_PARAMS_LATER = ", ".join(
    f"${n}::{kind}" for n, (_, kind) in enumerate(_GIVEN_LATER, start=_DURABILITY + 1)
)
_HASH = COLUMNS.index("hash")
_APPEND = (
    "WITH head AS (SELECT last_seq, last_hash FROM audit_head FOR UPDATE),"
    " durability AS (SELECT set_config('synchronous_commit',"
    f" coalesce(${_DURABILITY}, current_setting('synchronous_commit')), true)),"
    " event AS (SELECT"
    f" ROW(h.last_seq + 1, now(), {_PARAMS}, h.last_hash, NULL, {_PARAMS_LATER})::audit_event"
    " AS e FROM head h, durability),"
    f" written AS (INSERT INTO audit_event ({', '.join(COLUMNS)})"
    f" SELECT {', '.join(f'(e).{name}' for name in COLUMNS[:_HASH])},"
    f" audit_event_hash(e, ${_CUSTOMERS_SHA256}::text),"
    f" {', '.join(f'(e).{name}' for name in COLUMNS[_HASH + 1 :])}"
    " FROM event RETURNING seq, hash)"
    " UPDATE audit_head SET last_seq = w.seq, last_hash = w.hash FROM written w"
    " RETURNING w.seq"
)


@dataclass(frozen=True)
class AuditEvent:
    """One request as the trail keeps it (values already redacted)."""

    request_id: str
    actor_kind: str  # user | app | anonymous | system
    actor_id: int | None
    actor_name: str | None
    client_address: str | None
    user_agent: str | None
    operation_type: str  # query | mutation | refused | job | cli
    operation_name: str | None
    document_sha256: str
    variables: Any
    outcome: str  # ok | error
    error_codes: list[str]
    customers: bytes  # ids of the customers returned, 16 bytes each
    fields: dict[str, dict[str, str]]
    changes: list[dict[str, Any]]
    actions: list[str] = field(default_factory=list)  # root fields, or a job's action
    actor_roles: list[str] = field(default_factory=list)  # roles, or an app's scopes


async def append_event(
    session: TenantSession, event: AuditEvent, *, flush_at_commit: bool = True
) -> int:
    """Append ``event`` to the open tenant transaction's chain; returns its number.

    ``flush_at_commit=False`` lets the commit return before the WAL reaches the disk
    (``synchronous_commit = off`` for this transaction only): PostgreSQL's WAL writer
    flushes such commits together within a fraction of a second. The event is still
    written, chained and committed with the request or not at all; only a crash of the
    database server in that window could lose it. For reads, whose transaction would
    otherwise not flush at all, this is the batching that keeps the trail cheap.
    """
    seq: int | None = await session.fetchval(
        _APPEND,
        event.request_id,
        event.actor_kind,
        event.actor_id,
        event.actor_name,
        event.client_address,
        event.user_agent,
        event.operation_type,
        event.operation_name,
        event.document_sha256,
        orjson.dumps(event.variables).decode(),
        event.outcome,
        event.error_codes,
        event.customers,
        orjson.dumps(event.fields).decode(),
        orjson.dumps(event.changes).decode(),
        hashlib.sha256(event.customers).hexdigest(),
        None if flush_at_commit else "off",
        event.actions,
        event.actor_roles,
    )
    if seq is None:
        raise RuntimeError("the tenant's audit head is missing: the event was not written")
    return seq
