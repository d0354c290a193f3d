"""Connecting Tortoise (and so asyncpg) to the platform database, once per process."""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url

from dangan.models import MODEL_MODULES


class SafeConnection(asyncpg.Connection):
    """A pooled connection that always drops any role before it is reused.

    Request code only ever uses ``SET LOCAL ROLE`` (undone at commit or rollback); this
    is the safety net should anything ever run a session-level ``SET ROLE``: asyncpg's
    default reset (``RESET ALL``) does not reset the role (FINDINGS.md).
    """

    def get_reset_query(self) -> str:
        return "RESET ROLE;\n" + str(super().get_reset_query())


def tortoise_config(database_url: str, *, pool_size: int = 10) -> dict[str, Any]:
    connection = expand_db_url(database_url)
    connection["credentials"].update(
        minsize=1,
        maxsize=pool_size,
        connection_class=SafeConnection,
        # No JIT: policy predicates make plans look expensive enough for PostgreSQL to
        # compile them, which turned 90 ms pages into 1 s ones (tests/authz measured it).
        server_settings={"application_name": "dangan", "jit": "off"},
    )
    return {
        "connections": {"default": connection},
        "apps": {"models": {"models": MODEL_MODULES, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


_pool_client: BaseDBAsyncClient | None = None


async def connect(database_url: str, *, pool_size: int = 10) -> None:
    """Open the pool. Platform DDL is applied by :func:`dangan.tenants.migrations`."""
    global _pool_client
    await Tortoise.init(config=tortoise_config(database_url, pool_size=pool_size))
    _pool_client = connections.get("default")


def pool_client() -> BaseDBAsyncClient:
    """The pool's own client, never a caller's transaction: each query takes a connection
    of its own, as the app role. For reading platform tables (the backup catalogue) from
    inside a tenant transaction, whose connection is the tenant's role's and may be busy
    with a sibling resolver's statement."""
    if _pool_client is None:
        raise RuntimeError("the database is not connected")
    return _pool_client


async def disconnect() -> None:
    await Tortoise.close_connections()
