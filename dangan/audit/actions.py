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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from dangan.audit.chain import AuditEvent, append_event
from dangan.audit.recorder import actor_roles
from dangan.audit.redaction import audit_key, redact_variables
from dangan.services.callers import Caller
from dangan.services.errors import DanganError
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

Origin = Literal["job", "cli"]
# How a service that writes platform and tenant tables in one transaction records its
# action there: called with the action's name and details, inside the tenant's part.
Recorder = Callable[[str, dict[str, Any]], Awaitable[object]]
log = structlog.get_logger("dangan.audit")


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


@dataclass(frozen=True)
class ActionLog:
    """:func:`record_action` bound to one run of a job or a command: the key, where the
    action comes from, and what each of its events says besides its own details (a
    command's OS user and command)."""

    secret_key: str
    origin: Origin
    context: Mapping[str, Any] = field(default_factory=dict)

    async def record(
        self,
        action: str,
        *,
        actor: Caller | None = None,
        details: dict[str, Any] | None = None,
        customers: Iterable[uuid.UUID] = (),
        error_codes: Iterable[str] = (),
        request_id: str | None = None,
    ) -> int:
        """Append the action's event to the open tenant transaction's chain."""
        return await record_action(
            self.secret_key,
            action,
            origin=self.origin,
            actor=actor,
            details={**self.context, **(details or {})},
            customers=customers,
            error_codes=error_codes,
            request_id=request_id,
        )

    def recorder(self, actor: Caller | None = None) -> Recorder:
        """:meth:`record` as a service's ``record`` hook."""

        async def record(action: str, details: dict[str, Any]) -> int:
            return await self.record(action, actor=actor, details=details)

        return record

    async def record_apart(
        self,
        tenant: TenantRef,
        action: str,
        *,
        actor: Caller | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record ``action`` in a transaction of its own (for work that wrote nothing
        in the tenant, or wrote it over many transactions)."""

        async def record() -> int:
            return await self.record(action, actor=actor, details=details)

        return await run_in_tenant(tenant, record)

    async def record_failure(
        self,
        tenant: TenantRef,
        action: str,
        error: BaseException,
        *,
        actor: Caller | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Record that ``action`` failed with ``error``, in a transaction of its own (the
        work's rolled back). If even that fails, it is logged: the caller goes on to
        raise or report the original error."""

        async def record() -> None:
            await self.record(
                action,
                actor=actor,
                details=details,
                error_codes=[error_code(error)],
                request_id=request_id,
            )

        try:
            await run_in_tenant(tenant, record)
        except Exception:
            log.exception("could not record a failed action", action=action, tenant=tenant.slug)


def error_code(error: BaseException) -> str:
    """The code an error is recorded with: a domain error's own, else INTERNAL."""
    return error.code if isinstance(error, DanganError) else "INTERNAL"
