"""What each kind of caller may do at all, before any per-customer decision.

Interim rules of the foundation: every member may read customers of their tenant;
admins, managers and sales may create and edit; auditors only read; partner apps act
within the scopes of their key. Which customers and which fields each caller sees is
decided by the Oso policies (see ``policies/``) once they land; this table stays the
coarse gate in front of them.
"""

from __future__ import annotations

from typing import Literal

from dangan.services.callers import Caller
from dangan.services.errors import Forbidden

Action = Literal["customer.read", "customer.create", "customer.update", "policy.manage"]

_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"customer.read", "customer.create", "customer.update", "policy.manage"}),
    "manager": frozenset({"customer.read", "customer.create", "customer.update"}),
    "sales": frozenset({"customer.read", "customer.create", "customer.update"}),
    "auditor": frozenset({"customer.read"}),
}
_SCOPE_ACTIONS: dict[str, frozenset[str]] = {
    "customers:read": frozenset({"customer.read"}),
    "customers:write": frozenset({"customer.read", "customer.create", "customer.update"}),
}


def allowed_actions(caller: Caller) -> frozenset[str]:
    table = _SCOPE_ACTIONS if caller.kind == "app" else _ROLE_ACTIONS
    grants = caller.scopes if caller.kind == "app" else caller.roles
    return frozenset().union(*(table.get(grant, frozenset()) for grant in grants))


def check_allowed(caller: Caller, action: Action) -> None:
    if action not in allowed_actions(caller):
        raise Forbidden(f"your role does not allow {action.replace('.', ' ')}")
