"""Fixtures of the backup tests: the backup store, and a populated tenant of its own per
test (backups stay locked in S3 under the tenant's slug; each test has a fresh slug)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
