"""Who may read the tenant's compliance report (合规审查): the policy's
``can_read_compliance_report(user)`` (``policies/compliance.polar``; by default auditors
and administrators). The report is for staff: partner apps are refused whatever a policy
says, and a policy that does not define the rule lets nobody read it (fail closed)."""

from __future__ import annotations

from dangan.authz.store import POLICIES
from dangan.authz.subjects import actor_for
from dangan.services.callers import Caller
from dangan.services.errors import Forbidden

COMPLIANCE_REPORT_RULE = "can_read_compliance_report"


async def check_compliance_reader(caller: Caller) -> None:
    """Raise FORBIDDEN unless the tenant's active policy lets ``caller`` read the report."""
    if caller.kind != "user":
        raise Forbidden("compliance reports are for staff accounts, not partner apps")
    engine = await POLICIES.engine_for(caller.tenant_id)
    if not engine.actor_allows(COMPLIANCE_REPORT_RULE, actor_for(caller)):
        raise Forbidden(
            "your access does not allow reading the compliance report"
            f" (policy rule {COMPLIANCE_REPORT_RULE})"
        )
