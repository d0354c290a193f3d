"""Who governs retention purges (定期清理): the tenant's policy
(``policies/retention.polar``), asked about the actor alone, once per actor.

- ``can_manage_retention``: edit the retention rules, preview a purge;
- ``can_manage_legal_holds``: place and release legal holds (and list them);
- ``can_approve_purge``: approve candidates of a rule that requires an approval;
- ``can_read_destruction_records``: read the destruction records and every candidate.

Partner apps never do any of it, whatever a policy says; a policy version without a
rule lets nobody do what it governs (fail closed). Which customers a hold or an
approval may concern is still the customer policy's ``can_see``.
"""

from __future__ import annotations

from typing import Literal

from dangan.authz.store import POLICIES
from dangan.authz.subjects import actor_for
from dangan.services.callers import Caller
from dangan.services.errors import Forbidden

RetentionRight = Literal[
    "can_manage_retention",
    "can_manage_legal_holds",
    "can_approve_purge",
    "can_read_destruction_records",
]
# Their names in policy test cases (policies/tests/*.yaml) → the rule.
RETENTION_CHECKS: dict[str, RetentionRight] = {
    "manage_retention": "can_manage_retention",
    "manage_legal_holds": "can_manage_legal_holds",
    "approve_purge": "can_approve_purge",
    "read_destruction_records": "can_read_destruction_records",
}
_WHAT: dict[RetentionRight, str] = {
    "can_manage_retention": "managing retention rules",
    "can_manage_legal_holds": "placing or releasing legal holds",
    "can_approve_purge": "approving purges",
    "can_read_destruction_records": "reading destruction records",
}


async def has_retention_right(caller: Caller, right: RetentionRight) -> bool:
    """Whether the tenant's active policy grants ``right`` to ``caller`` (inside the
    tenant transaction); never for a partner app."""
    if caller.kind != "user":
        return False
    engine = await POLICIES.engine_for(caller.tenant_id)
    return engine.actor_allows(right, actor_for(caller))


async def check_retention_right(caller: Caller, right: RetentionRight) -> None:
    """FORBIDDEN unless the policy grants ``right`` to ``caller``."""
    if caller.kind != "user":
        raise Forbidden("retention purges are for staff accounts, not partner apps")
    if not await has_retention_right(caller, right):
        raise Forbidden(f"your access does not allow {_WHAT[right]} (policy rule {right})")
