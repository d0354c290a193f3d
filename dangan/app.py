"""The Starlette application: ``/t/{tenant}/graphql``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import structlog
from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import ConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import connections

from dangan import database
from dangan.alarms.signal import AlarmSignal
from dangan.authz.store import load_policies
from dangan.devstack import Endpoints
from dangan.graphql.endpoint import graphql_endpoint
from dangan.logs import configure_logging
from dangan.metrics import REGISTRY
from dangan.services.customers.duplicates import chinese_names_have_trigrams
from dangan.services.ratelimit import LoginThrottle
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from dangan.tenants.migrations import migrate_platform

log = structlog.get_logger("dangan.app")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: object) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=3)  # type: ignore[arg-type]
        return name, "ok"
    except Exception as exc:  # any failure means "not ready"; say which part
        return name, f"failed: {type(exc).__name__}"


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = dict(
        await asyncio.gather(
            _check("postgres", connections.get("default").execute_query("SELECT 1")),
            _check("redis", state.redis.ping()),
            _check("s3", asyncio.to_thread(state.s3.bucket_exists, state.settings.s3_bucket)),
        )
    )
    ready = all(value == "ok" for value in checks.values())
    return Response(
        orjson.dumps({"ready": ready, "checks": checks}),
        status_code=200 if ready else 503,
        media_type="application/json",
    )


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings, endpoints: Endpoints, *, own_database: bool = True) -> Starlette:
    """The ASGI app. ``own_database=False`` leaves the Tortoise pool to the caller (tests
    and benchmarks that share one pool between the app and their own fixtures)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        load_policies(settings)
        if own_database:
            await database.connect(endpoints.database_url, pool_size=settings.db_pool_size)
            await migrate_platform()
            if not await chinese_names_have_trigrams():
                log.error(
                    "this database's LC_CTYPE does not classify Chinese characters: similar"
                    " Chinese names will not be found as duplicates. Recreate it with a UTF-8"
                    " LC_CTYPE (e.g. C.UTF-8); an embedded data dir from before this check"
                    " needs `make clean`."
                )
        app.state.redis = Redis.from_url(endpoints.redis_url)
        app.state.s3 = s3_client(endpoints)
        await asyncio.to_thread(ensure_bucket, app.state.s3, settings.s3_bucket)
        app.state.objects = ObjectStore(app.state.s3, settings.s3_bucket)
        # Connects on first use, so the API starts (and /readyz can say so) without Redis.
        app.state.jobs = ArqRedis(
            connection_pool=ConnectionPool.from_url(endpoints.redis_url),
            default_queue_name=settings.queue_name,
        )
        app.state.alarm_signal = AlarmSignal(app.state.jobs, settings)
        app.state.login_throttle = LoginThrottle.create(
            app.state.redis,
            settings.redis_namespace,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.jobs.aclose()
            if own_database:
                await database.disconnect()

    app = Starlette(
        routes=[
            Route("/t/{tenant}/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
