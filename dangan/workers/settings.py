"""arq worker set-up: clients opened once in ``on_startup`` and shared through ``ctx``."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker, func

from dangan import database
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.workers.jobs import migrate_all_tenants, nightly_census, tenant_census

FUNCTIONS = [
    func(tenant_census, max_tries=3),
    func(migrate_all_tenants, max_tries=3, timeout=3600),
]


def build_worker(settings: Settings, endpoints: Endpoints, **overrides: Any) -> Worker:
    """A worker bound to the given Redis/PostgreSQL/S3; ``overrides`` go to arq's Worker."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        await database.connect(endpoints.database_url, pool_size=4)
        ctx["settings"] = settings
        ctx["s3"] = s3_client(endpoints)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await database.disconnect()

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": [cron(nightly_census, hour={2}, minute={15}, unique=True)],
        "redis_settings": RedisSettings.from_dsn(endpoints.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": False,
        "keep_result": 24 * 3600,
        **overrides,
    }
    return Worker(**options)


async def run_worker(settings: Settings, endpoints: Endpoints) -> None:
    worker = build_worker(settings, endpoints)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass
    finally:
        await worker.close()
