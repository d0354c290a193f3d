"""Writing a request's audit event inside the request's own tenant transaction.

The GraphQL endpoint calls :func:`record_request` after executing the operation and
before the transaction commits: the event and the request's writes land together or
not at all, and if the event cannot be written the request fails (fail closed) — no
data goes out that the trail does not show. One statement for a query; a mutation adds
one to collect the changes it wrote.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from dangan.audit.chain import AuditEvent, append_event
from dangan.audit.collector import AuditCollector
from dangan.audit.redaction import SENSITIVE_CLASSES, keyed_hash, redact_variables
from dangan.models.archive import CUSTOMER_FIELDS, FieldSpec
from dangan.models.records import RECORD_TYPES
from dangan.services.callers import Caller
from dangan.tenants.scope import raw_connection

# Changes written by this transaction: now() is its start time, the same for every row
# it writes (customer_change.at defaults to now(); decisions set decided_at = now()).
_CHANGES_OF_THIS_TRANSACTION = (
    "SELECT ch.id, ch.customer_id, ch.action, ch.record_type, ch.record_id, ch.status,"
    " jsonb_agg(jsonb_build_array(f.field, f.old_value, f.new_value) ORDER BY f.field)"
    " FILTER (WHERE f.field IS NOT NULL) AS fields"
    " FROM customer_change ch LEFT JOIN customer_change_field f ON f.change_id = ch.id"
    " WHERE ch.at = now() OR ch.decided_at = now()"
    " GROUP BY ch.id ORDER BY ch.id"
)


@dataclass(frozen=True)
class RequestFacts:
    """What the endpoint knows about the request, before and after executing it."""

    request_id: str
    caller: Caller | None
    client_address: str | None
    user_agent: str | None
    operation_type: str
    operation_name: str | None
    document: str
    variables: dict[str, Any]
    error_codes: list[str]
    actions: tuple[str, ...] = ()  # the operation's root fields


def actor_roles(caller: Caller | None) -> list[str]:
    """What the trail keeps of the actor's grants: a person's roles, an app's scopes."""
    if caller is None:
        return []
    return sorted(caller.scopes if caller.kind == "app" else caller.roles)


def _spec(record_type: str, field: str) -> FieldSpec | None:
    if record_type == "customer":
        return CUSTOMER_FIELDS.get(field)
    record = RECORD_TYPES.get(record_type)
    return record.spec(field) if record is not None else None


def _change_values(key: bytes, record_type: str, values: Any) -> dict[str, Any]:
    """Field → old/new; values of sensitive classes (and of fields of no known class)
    as keyed hashes, the rest as they are."""
    changed: dict[str, Any] = {}
    for field, old, new in orjson.loads(values) if values else ():
        spec = _spec(record_type, field)
        if spec is not None and spec.sensitivity not in SENSITIVE_CLASSES:
            changed[field] = {"old": old, "new": new}
        else:
            changed[field] = {"old": keyed_hash(key, old), "new": keyed_hash(key, new)}
    return changed


async def _changes_written(key: bytes) -> list[dict[str, Any]]:
    rows = await raw_connection().fetch(_CHANGES_OF_THIS_TRANSACTION)
    return [
        {
            "id": row["id"],
            "customer": str(row["customer_id"]),
            "action": row["action"],
            "recordType": row["record_type"],
            "recordId": str(row["record_id"]) if row["record_id"] else None,
            "status": row["status"],
            "fields": _change_values(key, row["record_type"], row["fields"]),
        }
        for row in rows
    ]


async def record_request(
    facts: RequestFacts, collector: AuditCollector, key: bytes, *, flush_reads: bool = False
) -> int:
    """Append the request's event to the tenant's chain; returns its number. Raises
    if it cannot be written, so the caller's transaction rolls back (fail closed).
    ``flush_reads``: a read's commit waits for the disk too (settings.audit_flush_reads)."""
    caller = facts.caller
    changes = await _changes_written(key) if facts.operation_type == "mutation" else []
    event = AuditEvent(
        request_id=facts.request_id,
        actor_kind=caller.kind if caller else "anonymous",
        actor_id=caller.id if caller else None,
        actor_name=caller.name if caller else None,
        client_address=facts.client_address,
        user_agent=facts.user_agent,
        operation_type=facts.operation_type,
        operation_name=facts.operation_name,
        document_sha256=hashlib.sha256(facts.document.encode()).hexdigest(),
        variables=redact_variables(key, facts.variables),
        outcome="error" if facts.error_codes else "ok",
        error_codes=sorted(set(facts.error_codes)),
        customers=collector.customer_ids(),
        fields=collector.fields_summary(),
        changes=changes,
        actions=list(facts.actions),
        actor_roles=actor_roles(caller),
    )
    # A read need not wait for the disk (see append_event); a mutation's writes do, and
    # so does the record of a refused request (it has no other trace).
    flush = flush_reads or facts.operation_type != "query"
    return await append_event(raw_connection(), event, flush_at_commit=flush)
