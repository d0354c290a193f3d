"""Versioned migrations: the platform schema first, then every tenant schema.

Each version of each schema is applied in its own transaction together with its record
(``<schema>.schema_migration`` and ``public.tenant.schema_version``), so an interrupted
``migrate --all`` resumes where it stopped and never leaves a version half-applied.
An advisory lock per schema makes concurrent runners take turns.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import TenantRef, enter_tenant, leave_tenant
from dangan.tenants.versions import PLATFORM_MIGRATIONS, TENANT_MIGRATIONS, Migration

ProgressCallback = Callable[[TenantRef, int], None]


def _lock_key(name: str) -> int:
    return zlib.crc32(f"dangan-migrate:{name}".encode())


async def migrate_platform() -> int:
    """Bring ``public`` up to date; returns how many versions were applied."""
    db = connections.get("default")
    await db.execute_script(
        "CREATE TABLE IF NOT EXISTS public.platform_migration ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = 0
    for migration in PLATFORM_MIGRATIONS:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_lock_key("public")])
            _, rows = await conn.execute_query(
                "SELECT 1 FROM public.platform_migration WHERE version = $1", [migration.version]
            )
            if rows:
                continue
            await conn.execute_script(migration.sql)
            await conn.execute_query(
                "INSERT INTO public.platform_migration (version, name) VALUES ($1, $2)",
                [migration.version, migration.name],
            )
            applied += 1
    await _ensure_deployment_id(db)
    return applied


async def _ensure_deployment_id(db: BaseDBAsyncClient) -> None:
    await db.execute_query(
        "INSERT INTO public.platform_meta (key, value)"
        " VALUES ('deployment_id', substr(md5(random()::text), 1, 6))"
        " ON CONFLICT (key) DO NOTHING"
    )


async def apply_schema_migration(
    conn: BaseDBAsyncClient, schema: TenantRef, migration: Migration
) -> None:
    """Apply one version to ``schema.schema_name`` inside the caller's transaction, as
    the tenant role, recorded in that schema's ``schema_migration`` only: the registry is
    not told (a schema being restored is not yet the tenant's)."""
    await enter_tenant(conn, schema)
    await conn.execute_script(
        "CREATE TABLE IF NOT EXISTS schema_migration ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute_script(migration.sql)
    await conn.execute_query(
        "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
        [migration.version, migration.name],
    )
    await leave_tenant(conn)


async def apply_tenant_migration(
    conn: BaseDBAsyncClient, tenant: TenantRef, migration: Migration
) -> None:
    """Apply one version to the tenant's schema inside the caller's transaction, as the
    tenant role, and record it in the registry too."""
    await apply_schema_migration(conn, tenant, migration)
    await conn.execute_query(
        "UPDATE public.tenant SET schema_version = $1 WHERE id = $2",
        [migration.version, tenant.id],
    )


async def migrate_tenant(tenant: TenantRef, on_version: ProgressCallback | None = None) -> int:
    """Apply the tenant's pending versions, one transaction each; returns how many."""
    applied = 0
    for migration in TENANT_MIGRATIONS:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_lock_key(tenant.slug)])
            _, rows = await conn.execute_query(
                "SELECT schema_version FROM public.tenant WHERE id = $1", [tenant.id]
            )
            if rows and rows[0]["schema_version"] >= migration.version:
                continue
            await apply_tenant_migration(conn, tenant, migration)
            applied += 1
        if on_version:
            on_version(tenant, migration.version)
    return applied


@dataclass(frozen=True)
class MigrationReport:
    tenants: int
    versions_applied: int


async def migrate_all(
    on_tenant_done: Callable[[TenantRef, int], None] | None = None,
) -> MigrationReport:
    """Migrate every tenant (resumable: finished schemas are skipped quickly)."""
    tenants = await list_tenants()
    total = 0
    for tenant in tenants:
        count = await migrate_tenant(tenant)
        total += count
        if on_tenant_done:
            on_tenant_done(tenant, count)
    return MigrationReport(tenants=len(tenants), versions_applied=total)
