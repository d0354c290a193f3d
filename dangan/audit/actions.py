"""Events for what happens outside a GraphQL request: jobs and commands.

An import, an export, a rating run, a backup, a restore or a purge is done by an arq
job or a ``dangan`` command, not by the request that asked for it; each records what it
did as an event of the same chain, in the transaction that does the work where there is
one (so the work and its record land together), with ``operation_type`` ``job`` or
``cli`` and the action's name (``import.run``, ``export.run``, ``backup.run`` …) in
``actions``. The actor is the person or app that asked for it when there is one, and
``system`` otherwise (a cron run, an operator's command).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from dangan.audit.chain import AuditEvent, append_event
from dangan.audit.recorder import actor_roles
from dangan.audit.redaction import audit_key, redact_variables
from dangan.services.callers import Caller
from dangan.tenants.scope import raw_connection

Origin = Literal["job", "cli"]


async def record_action(
    secret_key: str,
    action: str,
    *,
    origin: Origin,
    actor: Caller | None = None,
    details: dict[str, Any] | None = None,
    customers: Iterable[uuid.UUID] = (),
    error_codes: Iterable[str] = (),
    request_id: str | None = None,
) -> int:
    """Append an event for ``action`` to the chain of the tenant transaction in
    progress (:func:`dangan.tenants.scope.run_in_tenant`); returns its number.
    ``details`` are redacted like request variables (sensitive values keyed-hashed)."""
    codes = sorted(set(error_codes))
    event = AuditEvent(
        request_id=request_id or uuid.uuid4().hex[:16],
        actor_kind=actor.kind if actor else "system",
        actor_id=actor.id if actor else None,
        actor_name=actor.name if actor else None,
        client_address=None,
        user_agent=None,
        operation_type=origin,
        operation_name=action,
        document_sha256=hashlib.sha256(action.encode()).hexdigest(),
        variables=redact_variables(audit_key(secret_key), details or {}),
        outcome="error" if codes else "ok",
        error_codes=codes,
        customers=b"".join(customer.bytes for customer in customers),
        fields={},
        changes=[],
        actions=[action],
        actor_roles=actor_roles(actor),
    )
    return await append_event(raw_connection(), event)
