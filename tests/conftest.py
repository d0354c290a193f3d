"""One real stack (PostgreSQL, Redis, S3) per test run, and a world of three tenants."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dangan import database
from dangan.app import create_app
from dangan.authz.store import load_policies
from dangan.devstack import Endpoints
from dangan.devstack.scratch import scratch_database
from dangan.settings import Settings
from dangan.tenants.migrations import migrate_platform
from tests.support.api import Api
from tests.support.stack import running_stack, with_database_url
from tests.support.world import World, build_world


@pytest.fixture(scope="session")
def stack() -> Iterator[tuple[Settings, Endpoints]]:
    with running_stack() as pair:
        yield pair


@pytest.fixture(scope="session")
def settings(stack: tuple[Settings, Endpoints]) -> Settings:
    return stack[0]


@pytest.fixture(scope="session")
async def endpoints(stack: tuple[Settings, Endpoints]) -> AsyncIterator[Endpoints]:
    """The stack's endpoints, with a database of this run's own on an external server."""
    endpoints = stack[1]
    external = os.environ.get("DANGAN_DATABASE_URL")
    if not external:
        yield endpoints
        return
    async with scratch_database(external, prefix="dangan_test") as url:
        yield with_database_url(endpoints, url)


@pytest.fixture(scope="session")
async def db(endpoints: Endpoints, settings: Settings) -> AsyncIterator[None]:
    await database.connect(endpoints.database_url, pool_size=5)
    await migrate_platform()
    load_policies(settings)
    yield
    await database.disconnect()


@pytest.fixture(scope="session")
async def world(db: None, settings: Settings) -> World:
    return await build_world(settings)


@pytest.fixture(scope="session")
async def app(db: None, settings: Settings, endpoints: Endpoints) -> AsyncIterator[Any]:
    application = create_app(settings, endpoints, own_database=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def api(app: Any, world: World) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://dangan.test") as client:
        yield Api(client)


@pytest.fixture
async def redis(endpoints: Endpoints) -> AsyncIterator[Redis]:
    client = Redis.from_url(endpoints.redis_url)
    yield client
    await client.aclose()
