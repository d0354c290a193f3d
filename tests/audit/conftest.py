"""Fixtures of the audit tests that write checkpoints: the checkpoint store, and a
tenant of its own per test (checkpoints stay locked in S3, under the tenant's slug)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from dangan.audit.checkpoints import CheckpointStore, open_checkpoint_store
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef
from tests.support.tenants import drop_tenant
from tests.support.world import World

_SLUGS = (f"audit_scratch_{n}" for n in itertools.count(1))


@pytest.fixture
async def store(settings: Settings, endpoints: Endpoints) -> CheckpointStore:
    return await open_checkpoint_store(s3_client(endpoints), settings)


@pytest.fixture
async def tenant(world: World) -> AsyncIterator[TenantRef]:
    """A fresh tenant per test, dropped after it."""
    slug = next(_SLUGS)
    await drop_tenant(slug)
    yield await create_tenant(slug, "Audit Scratch Ltd")
    await drop_tenant(slug)
