"""The tenant transaction: the one way request code reaches tenant data.

Every request runs in one transaction that begins with ``SET LOCAL search_path`` to the
tenant schema and ``SET LOCAL ROLE`` to the tenant role, so even a query that forgot
the tenant cannot read another tenant's tables: PostgreSQL refuses it. Both settings end
with the transaction, so a pooled connection goes back clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from dangan.tenants.names import quote_ident

T = TypeVar("T")


@dataclass(frozen=True)
class TenantRef:
    """What the request path needs to know about a tenant (from the registry)."""

    id: int
    slug: str
    name: str
    schema_name: str
    role_name: str
    status: str
    schema_version: int


class TenantSession:
    """The asyncpg connection of an open tenant transaction, safe to share within a request.

    One connection cannot run two statements at once, yet GraphQL resolves sibling fields
    (and DataLoaders) concurrently, so every statement takes the session's lock.
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        # Facts worth looking up once per transaction (e.g. the active policy version).
        self.memo: dict[str, Any] = {}

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        async with self._lock:
            return await self._connection.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        async with self._lock:
            return await self._connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self._lock:
            return await self._connection.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self._lock:
            return await self._connection.execute(query, *args)

    async def executemany(self, query: str, args: Any) -> None:
        async with self._lock:
            await self._connection.executemany(query, args)

    async def copy_records(self, table: str, columns: Sequence[str], records: Any) -> None:
        """``COPY`` rows into ``table`` of the tenant's schema (a validated identifier):
        one round trip for many rows, with the constraints of an INSERT."""
        async with self._lock:
            await self._connection.copy_records_to_table(
                table, records=records, columns=list(columns)
            )

    async def copy_table_out(self, table: str, output: Callable[[bytes], Awaitable[None]]) -> str:
        """``COPY table TO STDOUT`` (text format) of the tenant's schema, each chunk as it
        arrives handed to ``output``; returns the status (``COPY <rows>``)."""
        async with self._lock:
            status: str = await self._connection.copy_from_table(table, output=output)
            return status

    async def copy_table_in(self, table: str, source: AsyncIterable[bytes]) -> str:
        """``COPY table FROM STDIN`` (text format) into the tenant's schema, the bytes
        taken from ``source`` as they come; returns the status (``COPY <rows>``)."""
        async with self._lock:
            status: str = await self._connection.copy_to_table(table, source=source)
            return status

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: everything in the block is undone if it raises.

        Mutations run one after another (GraphQL executes them serially), so the body
        runs without the lock; only the savepoint's own statements take it.
        """
        transaction = self._connection.transaction()
        async with self._lock:
            await transaction.start()
        try:
            yield
        except BaseException:
            async with self._lock:
                await transaction.rollback()
            raise
        async with self._lock:
            await transaction.commit()


_current: ContextVar[tuple[TenantRef, BaseDBAsyncClient, TenantSession] | None] = ContextVar(
    "dangan_tenant_transaction", default=None
)


def scope_sql(tenant: TenantRef) -> str:
    return (
        f"SET LOCAL search_path TO {quote_ident(tenant.schema_name)}; "
        f"SET LOCAL ROLE {quote_ident(tenant.role_name)}"
    )


async def enter_tenant(conn: BaseDBAsyncClient, tenant: TenantRef) -> None:
    """Switch an open transaction to the tenant (used after platform writes in one tx)."""
    await conn.execute_script(scope_sql(tenant))


async def leave_tenant(conn: BaseDBAsyncClient) -> None:
    """Return an open transaction to the app role (e.g. to record progress in ``public``)."""
    await conn.execute_script("RESET ROLE; SET LOCAL search_path TO public")


@asynccontextmanager
async def tenant_part(conn: BaseDBAsyncClient, tenant: TenantRef) -> AsyncIterator[None]:
    """Switch an open platform transaction to ``tenant`` for the block, as
    :func:`tenant_transaction` does (so :func:`raw_connection` and the audit trail work
    in it), and back to the app role after: one transaction writes both sides."""
    await enter_tenant(conn, tenant)
    token = _current.set((tenant, conn, TenantSession(conn._connection)))
    try:
        yield
    finally:
        _current.reset(token)
    await leave_tenant(conn)


@asynccontextmanager
async def tenant_transaction(tenant: TenantRef) -> AsyncIterator[BaseDBAsyncClient]:
    """One transaction scoped to ``tenant``; commits on success, rolls back on error."""
    async with in_transaction() as conn:
        await enter_tenant(conn, tenant)
        token = _current.set((tenant, conn, TenantSession(conn._connection)))
        try:
            yield conn
        finally:
            _current.reset(token)


async def run_in_tenant(tenant: TenantRef, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` in a tenant transaction, once more if a cached statement went stale.

    asyncpg caches prepared statements per connection. When two tenants' tables differ
    (a migration that reached only some schemas) a statement prepared for one no longer
    fits the other and PostgreSQL refuses it inside a transaction (FINDINGS.md). The
    failed transaction is rolled back whole, the cache has been cleared by asyncpg, and
    the retry prepares afresh.
    """
    for attempt in (1, 2):
        try:
            async with tenant_transaction(tenant):
                return await work()
        except asyncpg.InvalidCachedStatementError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def current_tenant() -> TenantRef:
    state = _current.get()
    if state is None:
        raise RuntimeError("no tenant transaction is open")
    return state[0]


def current_db() -> BaseDBAsyncClient:
    """The open tenant transaction's connection (Tortoise client)."""
    state = _current.get()
    if state is None:
        raise RuntimeError("no tenant transaction is open")
    return state[1]


def raw_connection() -> TenantSession:
    """The open tenant transaction's connection for hand-written SQL (hot read paths)."""
    state = _current.get()
    if state is None:
        raise RuntimeError("no tenant transaction is open")
    return state[2]
