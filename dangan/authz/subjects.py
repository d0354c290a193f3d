"""The Python classes Polar policies talk about.

Actors (``User``, ``PartnerApp``) are plain values built from the request's caller.
``Customer``, ``ShareGrant`` and ``DepartmentLink`` are never instantiated for row
decisions: policies about them are turned into SQL (data filtering), so they only name
the columns and relations a policy may use.
"""

from __future__ import annotations

from dataclasses import dataclass

from dangan.services.callers import Caller


@dataclass(frozen=True)
class User:
    id: int
    roles: tuple[str, ...]
    department_id: int | None

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class PartnerApp:
    id: int
    scopes: tuple[str, ...]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


Actor = User | PartnerApp


def actor_for(caller: Caller) -> Actor:
    if caller.kind == "app":
        return PartnerApp(id=caller.id, scopes=tuple(sorted(caller.scopes)))
    return User(id=caller.id, roles=tuple(sorted(caller.roles)), department_id=caller.department_id)


class Customer:
    """A customer archive (table ``customer``)."""


class ShareGrant:
    """One class of one customer shared with a user, department or app (view ``share_grant``)."""


class DepartmentLink:
    """An (ancestor, descendant) pair of the department tree (``department_closure``)."""
