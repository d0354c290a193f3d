"""A tenant of its own per test (purges destroy customers; the shared world's are
counted by other tests), with staff of every role, and helpers to age its data."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from tests.retention.support import Scratch, make_scratch
from tests.support.tenants import drop_tenant
from tests.support.world import World

_SLUGS = (f"ret_scratch_{n}" for n in itertools.count(1))


@pytest.fixture
async def scratch(world: World, settings: Settings) -> AsyncIterator[Scratch]:
    """A fresh tenant with admin, manager, sales, sales2 and auditor, dropped after."""
    slug = next(_SLUGS)
    await drop_tenant(slug)
    yield await make_scratch(slug, settings)
    await drop_tenant(slug)


@pytest.fixture
async def objects(settings: Settings, endpoints: Endpoints) -> ObjectStore:
    """The bucket of attachments (made here when no app has made it yet)."""
    client = s3_client(endpoints)
    await asyncio.to_thread(ensure_bucket, client, settings.s3_bucket)
    return ObjectStore(client, settings.s3_bucket)
