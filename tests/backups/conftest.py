"""Fixtures of the backup tests: the backup store, and a populated tenant of its own per
test (backups stay locked in S3 under the tenant's slug; each test has a fresh slug)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest

from dangan.audit.actions import ActionLog
from dangan.backups.store import BackupStore, open_backup_store
from dangan.devstack import Endpoints
from dangan.services.attachments import object_key
from dangan.services.customers import create_customer
from dangan.services.identifiers import make_mobile, make_uscc
from dangan.services.people import caller_for, create_user
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from dangan.tenants.names import quote_ident
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.tenants import drop_tenant
from tests.support.world import World

_RUN = uuid.uuid4().hex[:6]
_SLUGS = (f"bk_{_RUN}_{n}" for n in itertools.count(1))


@pytest.fixture
async def backups(settings: Settings, endpoints: Endpoints) -> BackupStore:
    return await open_backup_store(s3_client(endpoints), settings)


@pytest.fixture
async def objects(settings: Settings, endpoints: Endpoints) -> ObjectStore:
    """The main bucket (attachments)."""
    client = s3_client(endpoints)
    await asyncio.to_thread(ensure_bucket, client, settings.s3_bucket)
    return ObjectStore(client, settings.s3_bucket)


@pytest.fixture
def log(settings: Settings) -> ActionLog:
    return ActionLog(settings.secret_key, "job")


@dataclass
class Filled:
    tenant: TenantRef
    customers: list[uuid.UUID]
    files: dict[str, bytes]  # object key -> content


async def fill(tenant: TenantRef, objects: ObjectStore, customers: int, files: int) -> Filled:
    """``customers`` enterprise customers made by an admin, and ``files`` stored
    attachments (their objects in the main bucket) on the first customers."""
    admin = await create_user(
        tenant, f"admin@{tenant.slug.replace('_', '-')}.test", ["admin"], display_name="A"
    )
    caller = caller_for(tenant, admin)
    rng = random.Random(tenant.slug)
    made: list[uuid.UUID] = []
    for index in range(customers):
        values = {
            "kind": "ENTERPRISE",
            "name": f"{tenant.slug}备份{index}有限公司",
            "phone": make_mobile(rng),
            "uscc": make_uscc(rng),
            "region": "北京市",
            "tier": "ORDINARY",
            "owner_id": admin.identity_id,
        }

        async def make(values: dict[str, object] = values) -> uuid.UUID:
            return await create_customer(caller, values, allow_possible_duplicate=True)

        made.append(await run_in_tenant(tenant, make))
    stored: dict[str, bytes] = {}
    for index in range(files):
        customer = made[index % len(made)]
        attachment = uuid.uuid4()
        key = object_key(tenant.slug, customer, attachment)
        content = f"%PDF-1.4 scan {index} of {tenant.slug}\n".encode() * (index + 1)
        await objects.put_bytes(key, content, "application/pdf")
        stored[key] = content

        async def insert(
            key: str = key,
            content: bytes = content,
            attachment: uuid.UUID = attachment,
            customer: uuid.UUID = customer,
        ) -> None:
            await raw_connection().execute(
                "INSERT INTO attachment (id, customer_id, category, filename, content_type,"
                " size_bytes, sha256, object_key, status, stored_at)"
                " VALUES ($1, $2, 'CONTRACT_SCAN', 'scan.pdf', 'application/pdf', $3, $4, $5,"
                " 'STORED', now())",
                attachment,
                customer,
                len(content),
                hashlib.sha256(content).hexdigest(),
                key,
            )

        await run_in_tenant(tenant, insert)
    return Filled(tenant, made, stored)


@pytest.fixture
async def tenant(world: World) -> AsyncIterator[TenantRef]:
    """A fresh tenant per test, dropped after it."""
    slug = next(_SLUGS)
    await drop_tenant(slug)
    yield await create_tenant(slug, "Backup Scratch Ltd")
    await drop_tenant(slug)


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
