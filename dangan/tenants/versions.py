"""The versioned DDL of the platform schema (``public``) and of every tenant schema.

Each list only grows: a released migration is never edited, a change is a new version.
Tenant migrations run with ``search_path`` set to the tenant schema and the role switched
to the tenant role, so every object they create is owned by that role and unqualified
names land in the tenant schema. Tenant tables never reference ``public`` (a schema can
move whole to another cluster); people are mirrored into ``member`` for that reason.
"""

from __future__ import annotations

from dangan.tenants.ddl import (
    Migration,
    alarms,
    archive,
    audit,
    audit_reading,
    audit_retention,
    backups,
    platform,
    profiles,
    retention,
)

PLATFORM_MIGRATIONS: tuple[Migration, ...] = platform.MIGRATIONS
TENANT_MIGRATIONS: tuple[Migration, ...] = (
    *archive.MIGRATIONS,
    *profiles.MIGRATIONS,
    *audit.MIGRATIONS,
    *audit_reading.MIGRATIONS,
    *alarms.MIGRATIONS,
    *audit_retention.MIGRATIONS,
    *retention.MIGRATIONS,
    *backups.MIGRATIONS,
)

LATEST_TENANT_VERSION = TENANT_MIGRATIONS[-1].version

__all__ = ["LATEST_TENANT_VERSION", "PLATFORM_MIGRATIONS", "TENANT_MIGRATIONS", "Migration"]
