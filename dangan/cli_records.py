"""What a ``dangan`` command leaves in a tenant's audit trail.

A command that acts on a tenant records its action (``origin`` ``cli``) as ``system``, or
as the member it acts for (``--email``: a policy change, an import or export), with the
operating-system user who ran it and the command (``dangan user create``: its name, not
its arguments, which may hold a password) in every event's details. The event goes in
the transaction that does the work where there is one; a failure is recorded in a
transaction of its own, then the error goes on to the operator.
"""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dangan.audit.actions import ActionLog
from dangan.services.callers import Caller
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef

T = TypeVar("T")


def os_user() -> str:
    """Who is logged in on this machine (``unknown`` where the system can't say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def command_log(settings: Settings, command: str) -> ActionLog:
    """The audit log of the command being run (``command``: its name, ``user create``)."""
    return ActionLog(
        settings.secret_key, "cli", {"osUser": os_user(), "command": f"dangan {command}"}
    )


async def attempt(
    tenant: TenantRef,
    log: ActionLog,
    action: str,
    work: Callable[[], Awaitable[T]],
    *,
    actor: Caller | None = None,
    details: dict[str, Any] | None = None,
) -> T:
    """Run ``work`` (which records its own success); if it fails, record ``action``'s
    failure apart and raise the error again."""
    try:
        return await work()
    except Exception as exc:
        await log.record_failure(tenant, action, exc, actor=actor, details=details)
        raise
