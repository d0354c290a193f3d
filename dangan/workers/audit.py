"""Audit jobs: the cron that checkpoints every tenant's audit head to S3."""

from __future__ import annotations

from typing import Any

from dangan.audit.checkpoints import checkpoint_tenants
from dangan.tenants.registry import list_tenants


async def audit_checkpoints(ctx: dict[str, Any]) -> dict[str, int | None]:
    """Cron: a checkpoint of each tenant's audit head whose head moved since its last
    one (tenant -> the seq written, None: nothing new); a rerun writes nothing."""
    return await checkpoint_tenants(await list_tenants(), ctx["audit_checkpoints"])
