"""What each kind of caller may do at all, before any per-customer decision.

A coarse gate by role or key scope, in front of the policies: admins, managers and sales
may create and edit, auditors only read, partner apps act within their key's scopes;
only admins manage policy versions, classification dictionaries and rating criteria and
merge duplicate customers,
and admins and managers approve large exports. Which customers, which fields and which
edits each caller actually gets is decided by the Oso policies (``policies/``) as SQL.

Access alarms are read by admins and auditors and decided and configured by admins
only. They are gated here rather than by a Polar rule: the policies decide about
customers (every rule becomes a SQL filter on them), and an alert is about a person or
an app; a tenant's own policy version could not drop the rule by leaving a file out.
Backups likewise: the tenant's catalogue is read by admins and auditors, and only admins
ask for a backup now (restores are the platform operators', from the command line).
"""

from __future__ import annotations

from typing import Literal

from dangan.services.callers import Caller
from dangan.services.errors import Forbidden

Action = Literal[
    "customer.read",
    "customer.create",
    "customer.update",
    "customer.merge",
    "policy.manage",
    "export.approve",
    "rating.manage",
    "classification.manage",
    "alarm.read",
    "alarm.manage",
    "backup.read",
    "backup.run",
]

_STAFF = frozenset({"customer.read", "customer.create", "customer.update"})
_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": _STAFF
    | {
        "policy.manage",
        "export.approve",
        "customer.merge",
        "rating.manage",
        "classification.manage",
        "alarm.read",
        "alarm.manage",
        "backup.read",
        "backup.run",
    },
    "manager": _STAFF | {"export.approve"},
    "sales": _STAFF,
    "auditor": frozenset({"customer.read", "alarm.read", "backup.read"}),
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
