"""Who may read the audit trail: the tenant's policy (``can_read_audit``), never an app."""

from __future__ import annotations

from dangan.authz.store import POLICIES
from dangan.authz.subjects import actor_for
from dangan.services.callers import Caller
from dangan.services.errors import Forbidden


async def check_audit_reader(caller: Caller) -> None:
    """FORBIDDEN unless the tenant's active policy lets ``caller`` read the audit trail
    (inside the tenant transaction). Partner apps never do, whatever the policy says
    (:meth:`PolicyEngine.may_read_audit`)."""
    if caller.kind != "user":
        raise Forbidden("partner apps may not read the audit trail")
    engine = await POLICIES.engine_for(caller.tenant_id)
    if not engine.may_read_audit(actor_for(caller)):
        raise Forbidden("your access policy does not allow reading the audit trail")
