"""A backup that failed for good, recorded where people look.

In one transaction: the run is marked failed with the reason (``public.backup_run``), the
tenant's trail gets a ``backup.run`` event carrying the error, and a ``backup_failed``
alert is opened about it (:mod:`dangan.alarms.system`; a second failure of the same
backup while its alert is open adds to that alert), with its ``alert.open`` event. The
caller queues the alert's webhooks once this has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from dangan.alarms.opening import Opened
from dangan.alarms.system import SYSTEM_ALERTS_VERSION, raise_system_alert
from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import give_up_run
from dangan.tenants.scope import TenantRef, tenant_part

RULE = "backup_failed"


@dataclass(frozen=True)
class Failure:
    tenant: TenantRef
    backup: str
    kind: str
    tries: int
    reason: str  # in words fit for the tenant's administrators (no server addresses)
    code: str  # the error code of the audit event

    @property
    def summary(self) -> str:
        tries = "1 try" if self.tries == 1 else f"{self.tries} tries"
        return f"the {self.kind} backup {self.backup} failed after {tries}: {self.reason}"


async def record_failure(failure: Failure, log: ActionLog) -> Opened | None:
    """Record the failure (see the module); the alert opened, or None (added to the open
    one, or a tenant whose schema predates backup alerts)."""
    details = {
        "backup": failure.backup,
        "kind": failure.kind,
        "tries": failure.tries,
        "reason": failure.reason,
    }
    async with in_transaction() as conn:
        tenant = failure.tenant
        await give_up_run(conn, tenant.id, failure.backup, failure.kind, failure.reason)
        async with tenant_part(conn, tenant):
            seq = await log.record(
                "backup.run",
                details=details,
                error_codes=[failure.code],
                request_id=failure.backup,
            )
            if tenant.schema_version < SYSTEM_ALERTS_VERSION:
                return None
            return await _alert(failure, log, details, seq)


async def _alert(
    failure: Failure, log: ActionLog, details: dict[str, object], seq: int
) -> Opened | None:
    now = datetime.now(UTC).isoformat()
    opened = await raise_system_alert(
        RULE,
        f"backup:{failure.backup}",
        name="backups",
        summary=failure.summary,
        evidence={**details, "firstAt": now, "lastAt": now},
        seq=seq,
    )
    if opened is not None:
        await log.record(
            "alert.open", details={"alert": opened.id, "rule": RULE, "suspended": False}
        )
    return opened
