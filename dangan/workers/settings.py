"""arq worker set-up: clients opened once in ``on_startup`` and shared through ``ctx``.

Three workers run side by side in ``dangan worker``: the main one (imports, exports,
ratings, checkpoints …), the alarm worker on a queue of its own, so alerts are never
stuck behind an hour-long import, and the backup worker on a third, so the nightly
backup of every tenant delays nobody and runs only ``DANGAN_BACKUP_CONCURRENCY`` at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker, func

from dangan import database
from dangan.audit.checkpoints import open_checkpoint_store
from dangan.authz.store import load_policies
from dangan.backups.store import open_configured_store
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.workers.alarms import alarm_sweep, deliver_alert_webhook, evaluate_alarms
from dangan.workers.archive import MAX_TRIES, export_customers, import_customers
from dangan.workers.audit import (
    audit_checkpoints,
    audit_retention,
    index_audit_access,
    prune_audit_trail,
)
from dangan.workers.backup_keeping import backup_upkeep, keep_tenant_backups
from dangan.workers.backups import ARQ_GRACE_SECONDS, backup_tenant, scheduled_backups
from dangan.workers.jobs import (
    expire_share_grants,
    migrate_all_tenants,
    nightly_census,
    tenant_census,
)
from dangan.workers.rating import nightly_ratings, rate_tenant_customers
from dangan.workers.restores import drop_retired_schemas, restore_drills
from dangan.workers.retention import nightly_retention, run_tenant_retention

FUNCTIONS = [
    func(tenant_census, max_tries=3),
    func(migrate_all_tenants, max_tries=3, timeout=3600),
    func(import_customers, max_tries=MAX_TRIES, timeout=3600),
    func(export_customers, max_tries=MAX_TRIES, timeout=3600),
    func(rate_tenant_customers, max_tries=5, timeout=3600),
    func(prune_audit_trail, max_tries=3, timeout=3600),
    func(run_tenant_retention, max_tries=3, timeout=3600),
    func(keep_tenant_backups, max_tries=3, timeout=3600),
]
# The backups' upkeep (pruning, pending replicas) starts this long after the backups.
UPKEEP_AFTER_HOURS = 3


async def _open_stores(ctx: dict[str, Any], settings: Settings, endpoints: Endpoints) -> None:
    """S3, once per worker: the main bucket and the backup bucket (and its replica)."""
    ctx["settings"] = settings
    ctx["s3"] = s3_client(endpoints)
    ctx["objects"] = ObjectStore(ctx["s3"], settings.s3_bucket)
    ctx["backups"] = await open_configured_store(settings, endpoints)


def _cron(settings: Settings, job: Any, **when: Any) -> Any:
    """A cron job of this deployment: arq's job keys are not per queue, so the namespace
    in its name (and so in each slot's job id) keeps deployments sharing one Redis from
    taking each other's slot; ``unique``: one run per slot however many workers."""
    return cron(job, name=f"cron:{settings.redis_namespace}:{job.__name__}", unique=True, **when)


def build_worker(
    settings: Settings, endpoints: Endpoints, *, connect_database: bool = True, **overrides: Any
) -> Worker:
    """A worker bound to the given Redis/PostgreSQL/S3; ``overrides`` go to arq's Worker.

    ``connect_database=False`` leaves the Tortoise pool to the caller (like
    ``create_app(..., own_database=False)``): Tortoise keeps one context per process, so a
    second ``Tortoise.init`` replaces the caller's pool and the worker's shutdown would
    close it under the caller's feet.
    """

    async def on_startup(ctx: dict[str, Any]) -> None:
        if connect_database:
            await database.connect(endpoints.database_url, pool_size=4)
        await _open_stores(ctx, settings, endpoints)
        ctx["audit_checkpoints"] = await open_checkpoint_store(ctx["s3"], settings)
        load_policies(settings)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if connect_database:
            await database.disconnect()

    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": [
            _cron(
                settings,
                nightly_census,
                hour={2},
                minute={15},
            ),
            _cron(
                settings,
                nightly_ratings,
                hour={1},
                minute={30},
            ),
            _cron(
                settings,
                expire_share_grants,
                minute=set(range(0, 60, 10)),
            ),
            _cron(
                settings,
                audit_checkpoints,
                minute=set(range(5, 60, 10)),
            ),
            _cron(
                settings,
                index_audit_access,
                minute=set(range(60)),  # every minute
                timeout=3600,
            ),
            _cron(
                settings,
                restore_drills,
                hour={4},
                minute={30},
                timeout=6 * 3600,
            ),
            _cron(
                settings,
                drop_retired_schemas,
                hour={5},
                minute={10},
            ),
            _cron(
                settings,
                backup_upkeep,
                hour={(settings.backup_hour + UPKEEP_AFTER_HOURS) % 24},
                minute={settings.backup_minute},
            ),
            _cron(
                settings,
                audit_retention,
                hour={3},
                minute={45},
            ),
            _cron(
                settings,
                nightly_retention,
                hour={4},
                minute={15},
            ),
            # Each tenant at its own time (DANGAN_BACKUP_HOUR:MINUTE by default).
            _cron(settings, scheduled_backups, minute=set(range(0, 60, 5))),
        ],
        "redis_settings": RedisSettings.from_dsn(endpoints.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": False,
        "keep_result": 24 * 3600,
        **overrides,
    }
    return Worker(**options)


def build_alarm_worker(
    settings: Settings, endpoints: Endpoints, *, connect_database: bool = True, **overrides: Any
) -> Worker:
    """The alarm worker (queue ``settings.alarm_queue_name``): evaluations, webhooks,
    and the sweep every minute. ``connect_database`` as for :func:`build_worker`."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        if connect_database:
            await database.connect(endpoints.database_url, pool_size=4)
        ctx["settings"] = settings
        ctx["http"] = httpx.AsyncClient(follow_redirects=False)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        client = ctx.pop("http", None)
        if client is not None:
            await client.aclose()
        if connect_database:
            await database.disconnect()

    options: dict[str, Any] = {
        "functions": [
            # A finished evaluation leaves no result: its id (tenant and slot) is free
            # again at once, and there is nothing to read back.
            func(evaluate_alarms, max_tries=3, keep_result=0, timeout=600),
            func(
                deliver_alert_webhook,
                max_tries=settings.alarm_webhook_max_tries,
                timeout=settings.alarm_webhook_timeout_seconds + 30,
            ),
        ],
        "cron_jobs": [
            _cron(
                settings,
                alarm_sweep,
                second={30},
            ),
        ],
        "redis_settings": RedisSettings.from_dsn(endpoints.redis_url),
        "queue_name": settings.alarm_queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": False,
        "keep_result": 3600,
        **overrides,
    }
    return Worker(**options)


def build_backup_worker(
    settings: Settings, endpoints: Endpoints, *, connect_database: bool = True, **overrides: Any
) -> Worker:
    """The backup worker (queue ``settings.backup_queue_name``): ``backup_tenant`` jobs,
    ``DANGAN_BACKUP_CONCURRENCY`` at a time. ``connect_database`` as for
    :func:`build_worker`."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        if connect_database:
            await database.connect(endpoints.database_url, pool_size=4)
        await _open_stores(ctx, settings, endpoints)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if connect_database:
            await database.disconnect()

    options: dict[str, Any] = {
        "functions": [
            # One try more than DANGAN_BACKUP_MAX_TRIES: if the last is cut off (its
            # worker killed), the job still runs once more, to record the failure.
            func(
                backup_tenant,
                max_tries=settings.backup_max_tries + 1,
                timeout=settings.backup_timeout_seconds + ARQ_GRACE_SECONDS,
            ),
        ],
        "redis_settings": RedisSettings.from_dsn(endpoints.redis_url),
        "queue_name": settings.backup_queue_name,
        "max_jobs": settings.backup_concurrency,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "handle_signals": False,
        "keep_result": 24 * 3600,
        **overrides,
    }
    return Worker(**options)


async def run_worker(
    settings: Settings, endpoints: Endpoints, *, connect_database: bool = True
) -> None:
    """The main, alarm and backup workers, sharing one database pool."""
    if connect_database:
        await database.connect(endpoints.database_url, pool_size=8)
    workers = [
        build_worker(settings, endpoints, connect_database=False),
        build_alarm_worker(settings, endpoints, connect_database=False),
        build_backup_worker(settings, endpoints, connect_database=False),
    ]
    try:
        await asyncio.gather(*(worker.async_run() for worker in workers))
    except asyncio.CancelledError:
        pass
    finally:
        for worker in workers:
            await worker.close()
        if connect_database:
            await database.disconnect()
