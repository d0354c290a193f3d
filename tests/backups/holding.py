"""Stopping a backup mid-way, deterministically: the test locks the table a backup reads
last, so the backup waits in that table's COPY with every other table read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from dangan.devstack import Endpoints
from dangan.tenants.names import quote_ident
from dangan.tenants.scope import TenantRef


@dataclass
class HeldTable:
    """A table of a tenant locked by the test, so that a backup stops at it."""

    watcher: asyncpg.Connection
    table: str
    holder: asyncpg.Connection

    async def release(self) -> None:
        """Let the backup go on (idempotent)."""
        if self.holder.is_in_transaction():
            await self.holder.execute("ROLLBACK")

    async def waiting_copy(self, timeout: float = 60) -> int:
        """The pid of the backend whose COPY of the table waits for the lock."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = await self.watcher.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'COPY %' AND position($1 in query) > 0",
                quote_ident(self.table),
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no backup reached {self.table} within {timeout} s")

    async def terminate(self, pid: int) -> None:
        """What a database restart does to a session: end it from another one."""
        assert await self.watcher.fetchval("SELECT pg_terminate_backend($1)", pid)

    async def gone(self, pid: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while await self.watcher.fetchval("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
            assert time.monotonic() < deadline, f"backend {pid} still there"
            await asyncio.sleep(0.05)


@asynccontextmanager
async def last_table_held(endpoints: Endpoints, tenant: TenantRef) -> AsyncIterator[HeldTable]:
    """Lock the tenant's table a backup reads last (tables go in name order), so a
    backup stops mid-way, every other table read, until ``release()`` or the block's end."""
    watcher = await asyncpg.connect(endpoints.database_url)
    holder = await asyncpg.connect(endpoints.database_url)
    try:
        table = await watcher.fetchval(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            ' ORDER BY c.relname COLLATE "C" DESC LIMIT 1',
            tenant.schema_name,
        )
        await holder.execute(
            "BEGIN;"
            f" SET LOCAL ROLE {quote_ident(tenant.role_name)};"
            f" LOCK TABLE {quote_ident(tenant.schema_name)}.{quote_ident(table)}"
            " IN ACCESS EXCLUSIVE MODE"
        )
        held = HeldTable(watcher, table, holder)
        yield held
        await held.release()
    finally:
        await holder.close()
        await watcher.close()
