"""What the restore tests share: backups kept in memory (what the backup writer would
put in S3, before sealing), and looks at a tenant's schemas, registry row and data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tortoise import connections

from dangan.backups.snapshot import Snapshot, TableSink, take_snapshot
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

COUNT = "{ customers(first: 50) { totalCount edges { node { id name } } } }"


@dataclass
class Backup:
    """A snapshot and the bytes of each table, as a restore reads them back."""

    snapshot: Snapshot
    data: dict[str, bytes] = field(default_factory=dict)
    chunk: int = 997  # small, odd-sized pieces: rows cut across chunks

    async def read(self, table: str) -> AsyncIterator[bytes]:
        data = self.data[table]
        for start in range(0, len(data), self.chunk):
            yield data[start : start + self.chunk]

    def table(self, name: str) -> bytes:
        return self.data[name]


async def take_backup(tenant: TenantRef) -> Backup:
    backup = Backup(Snapshot(None, []))

    class Keeping(TableSink):
        async def write(self, chunk: bytes) -> None:
            await super().write(chunk)
            backup.data[self.table] = backup.data.get(self.table, b"") + chunk

    async def keeping(table: str) -> TableSink:
        backup.data[table] = b""
        return Keeping(table)

    backup.snapshot = await take_snapshot(tenant, keeping)
    return backup


async def checksums(tenant: TenantRef) -> dict[str, tuple[int, str]]:
    """Each table's rows and SHA-256, as a backup would record them now."""
    snapshot = await take_snapshot(tenant)
    return {copy.table: (copy.rows, copy.sha256) for copy in snapshot.tables}


async def platform(sql: str, *args: Any) -> list[dict[str, Any]]:
    _, rows = await connections.get("default").execute_query(sql, list(args))
    return [dict(row) for row in rows]


async def schemas_of(tenant: TenantRef) -> list[str]:
    """Every schema the tenant's role owns."""
    rows = await platform(
        "SELECT nspname FROM pg_namespace WHERE nspowner = $1::regrole ORDER BY nspname",
        tenant.role_name,
    )
    return [row["nspname"] for row in rows]


async def registry(tenant: TenantRef) -> TenantRef:
    found = await find_tenant(tenant.slug)
    assert found is not None
    return found


async def in_tenant(tenant: TenantRef, sql: str, *args: Any) -> Any:
    async def run() -> Any:
        return await raw_connection().fetchval(sql, *args)

    return await run_in_tenant(tenant, run)


async def assert_untouched(tenant: TenantRef, before: dict[str, tuple[int, str]]) -> None:
    """No scratch schema left, the registry as it was, the data as it was."""
    assert await schemas_of(tenant) == [tenant.schema_name]
    assert await registry(tenant) == tenant
    assert await checksums(tenant) == before
    assert (
        await platform("SELECT * FROM public.retired_schema WHERE tenant_id = $1", tenant.id) == []
    )
