"""Fixtures of the restore tests: tenants of their own, full of data, removed after;
the audit checkpoint store."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from dangan.audit.checkpoints import CheckpointStore, open_checkpoint_store
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.provisioning import create_tenant
from tests.backups.filled import Filled, fill
from tests.support.tenants import drop_tenant
from tests.support.world import World

_SLUGS = (f"restore_{n}" for n in itertools.count(1))


@pytest.fixture
async def slugs(world: World) -> AsyncIterator[Callable[[], str]]:
    """Fresh tenant slugs for the test; every tenant made under them is removed after."""
    made: list[str] = []

    def new() -> str:
        made.append(next(_SLUGS))
        return made[-1]

    yield new
    for slug in made:
        await drop_tenant(slug)


@pytest.fixture
async def filled(slugs: Callable[[], str], settings: Settings) -> Filled:
    """A tenant of the test's own with data in most of its tables."""
    slug = slugs()
    await drop_tenant(slug)  # left by an interrupted run
    return await fill(await create_tenant(slug, "Restore Ltd"), settings)


@pytest.fixture
async def store(settings: Settings, endpoints: Endpoints) -> CheckpointStore:
    return await open_checkpoint_store(s3_client(endpoints), settings)
