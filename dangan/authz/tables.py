"""What policies may name: the classes registered with Oso, their fields, relations,
and the SQL tables and columns they map to. Nothing else can reach the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polar import Relation

from dangan.authz.subjects import Customer, DepartmentLink, PartnerApp, ShareGrant, User
from dangan.models.archive import CUSTOMER_FIELDS

CUSTOMER_ALIAS = "c"


@dataclass(frozen=True)
class Link:
    """A relation from the customer row to another table, rendered as EXISTS."""

    target: type
    my_column: str
    other_column: str


@dataclass(frozen=True)
class Table:
    name: str
    alias: str
    columns: dict[str, type]


_PY_TYPES: dict[str, type] = {
    "owner_id": int,
    "department_id": int,
    "version": int,
    "potential": int,
    "consents_to_sharing": bool,
}

TABLES: dict[type, Table] = {
    Customer: Table(
        "customer",
        CUSTOMER_ALIAS,
        {"id": str, **{name: _PY_TYPES.get(name, str) for name in CUSTOMER_FIELDS}},
    ),
    ShareGrant: Table(
        "share_grant",
        "g",
        {
            "customer_id": str,
            "user_id": int,
            "department_id": int,
            "app_id": int,
            "field_class": str,
            "level": str,
        },
    ),
    DepartmentLink: Table("department_closure", "d", {"ancestor_id": int, "descendant_id": int}),
}

LINKS: dict[str, Link] = {
    "grants": Link(ShareGrant, "id", "customer_id"),
    "departments": Link(DepartmentLink, "department_id", "descendant_id"),
}


def polar_fields(cls: type) -> dict[str, Any]:
    fields: dict[str, Any] = dict(TABLES[cls].columns)
    if cls is Customer:
        for name, link in LINKS.items():
            fields[name] = Relation(
                kind="many",
                other_type=link.target.__name__,
                my_field=link.my_column,
                other_field=link.other_column,
            )
    return fields


ACTOR_CLASSES = (User, PartnerApp)
