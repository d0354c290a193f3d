"""Audit jobs: the cron that checkpoints every tenant's audit head to S3, and the one
that indexes which events returned which customer (``audit_access``)."""

from __future__ import annotations

from typing import Any

from dangan.audit.access_index import INDEX_VERSION, catch_up
from dangan.audit.checkpoints import checkpoint_tenants
from dangan.tenants.registry import list_tenants


async def audit_checkpoints(ctx: dict[str, Any]) -> dict[str, int | None]:
    """Cron: a checkpoint of each tenant's audit head whose head moved since its last
    one (tenant -> the seq written, None: nothing new); a rerun writes nothing."""
    return await checkpoint_tenants(await list_tenants(), ctx["audit_checkpoints"])


async def index_audit_access(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: index the customers of every tenant's events written since the last run
    (tenant -> events indexed). Tenants whose schema has no index yet are left out."""
    indexed: dict[str, int] = {}
    for tenant in await list_tenants():
        if tenant.schema_version >= INDEX_VERSION:
            indexed[tenant.slug] = (await catch_up(tenant)).events
    return indexed
