"""The tenant registry: which tenants exist, their schema, role and version."""

from __future__ import annotations

from typing import Any

from tortoise import connections

from dangan.tenants.scope import TenantRef

_COLUMNS = "id, slug, name, schema_name, role_name, status, schema_version"


def _ref(row: dict[str, Any]) -> TenantRef:
    return TenantRef(**{key: row[key] for key in TenantRef.__dataclass_fields__})


async def find_tenant(slug: str) -> TenantRef | None:
    db = connections.get("default")
    _, rows = await db.execute_query(
        f"SELECT {_COLUMNS} FROM public.tenant WHERE slug = $1", [slug]
    )
    return _ref(dict(rows[0])) if rows else None


async def list_tenants() -> list[TenantRef]:
    db = connections.get("default")
    _, rows = await db.execute_query(f"SELECT {_COLUMNS} FROM public.tenant ORDER BY slug")
    return [_ref(dict(row)) for row in rows]
