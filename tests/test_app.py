"""Health, readiness, metrics and GraphiQL."""

from __future__ import annotations

import dataclasses
import socket

import httpx

from dangan.app import create_app
from tests.support.api import Api
from tests.support.world import World


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"postgres": "ok", "redis": "ok", "s3": "ok"}}


async def test_readyz_names_the_part_that_is_down(db, settings, endpoints) -> None:
    broken = dataclasses.replace(endpoints, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    app = create_app(settings, broken, own_database=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            reply = await client.get("/readyz")
    assert reply.status_code == 503
    checks = reply.json()["checks"]
    assert checks["postgres"] == "ok" and checks["s3"] == "ok"
    assert checks["redis"].startswith("failed")


async def test_metrics_count_requests(api: Api, world: World) -> None:
    await api.post("alpha", world["alpha"].tokens["admin"], "{ me { id } }")
    text = (await api.client.get("/metrics")).text
    assert 'dangan_graphql_requests_total{operation="query",status="200",tenant="alpha"}' in text
    assert "dangan_graphql_request_seconds_bucket" in text


async def test_graphiql_only_in_dev(db, settings, endpoints, api: Api) -> None:
    html = {"Accept": "text/html"}
    not_dev = await api.client.get("/t/alpha/graphql", headers=html)
    assert not_dev.status_code == 400
    assert "graphiql" not in not_dev.text.lower()
    dev_app = create_app(settings.model_copy(update={"env": "dev"}), endpoints, own_database=False)
    async with dev_app.router.lifespan_context(dev_app):
        transport = httpx.ASGITransport(app=dev_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            page = await client.get("/t/alpha/graphql", headers=html)
    assert page.status_code == 200 and "graphiql" in page.text.lower()
