"""``customers(first: 1000)`` with 10 fields, against raw asyncpg + orjson.

API side: the full HTTP request as east's admin (sees every customer). Floor: a plain
asyncpg connection to the same database, one transaction scoped like a request's
(``SET LOCAL search_path`` and ``SET LOCAL ROLE`` — the app role cannot read a tenant's
tables without the role, as the schema belongs to it), the same ten columns in the same
order, ``orjson.dumps`` of the rows as a list of dicts. orjson writes ``uuid.UUID`` natively, but
asyncpg decodes ``uuid`` columns to its own ``asyncpg.pgproto.pgproto.UUID``, which orjson
refuses, so ``default=str`` converts the ids (as the API's ``str(row["id"])`` does).
Also timed, interleaved with both: the same list through ``nodes`` instead of
``edges { node }``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import orjson

from bench.harness import Harness, Side, report
from dangan.tenants.names import quote_ident

TENANT = "east"
USER = "admin"
COUNT = 1000
FIELDS = "id kind name phone email idNumber uscc address region tier"
EDGES_QUERY = f"{{ customers(first: {COUNT}) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
NODES_QUERY = f"{{ customers(first: {COUNT}) {{ nodes {{ {FIELDS} }} }} }}"
RAW_SQL = (
    "SELECT id, kind, name, phone, email, id_number, uscc, address, region, tier"
    f" FROM customer ORDER BY created_at, id LIMIT {COUNT}"
)
FIELD_COUNT = len(FIELDS.split())


class BenchmarkFailed(AssertionError):
    pass


def _api_nodes(response: httpx.Response, shape: str) -> list[dict[str, Any]]:
    """The customer nodes of a response, or a loud failure saying what came back."""
    if response.status_code != 200:
        raise BenchmarkFailed(f"HTTP {response.status_code}: {response.text[:500]}")
    body = orjson.loads(response.content)
    if body.get("errors"):
        raise BenchmarkFailed(f"GraphQL errors: {body['errors']}")
    page = body["data"]["customers"]
    nodes: list[dict[str, Any]] = (
        [edge["node"] for edge in page["edges"]] if shape == "edges" else page["nodes"]
    )
    if len(nodes) != COUNT:
        raise BenchmarkFailed(f"expected {COUNT} customers, got {len(nodes)}")
    if len(nodes[0]) != FIELD_COUNT:
        raise BenchmarkFailed(f"expected {FIELD_COUNT} fields, got {sorted(nodes[0])}")
    return nodes


def _checker(shape: str) -> Callable[[Any], None]:
    def check(response: Any) -> None:
        _api_nodes(response, shape)

    return check


def _check_raw(payload: Any) -> None:
    rows = orjson.loads(payload)
    if len(rows) != COUNT or len(rows[0]) != FIELD_COUNT:
        raise BenchmarkFailed(f"the raw query did not return {COUNT} rows of {FIELD_COUNT}")


async def run(h: Harness) -> None:
    tenant = await h.tenant(TENANT)
    scope = (
        f"SET LOCAL search_path TO {quote_ident(tenant.schema_name)};"
        f" SET LOCAL ROLE {quote_ident(tenant.role_name)}"
    )

    async def api_edges() -> httpx.Response:
        return await h.graphql(TENANT, USER, EDGES_QUERY)

    async def api_nodes() -> httpx.Response:
        return await h.graphql(TENANT, USER, NODES_QUERY)

    async with h.raw_connection() as conn:

        async def raw() -> bytes:
            async with conn.transaction():
                await conn.execute(scope)
                rows: list[asyncpg.Record] = await conn.fetch(RAW_SQL)
            return orjson.dumps([dict(row) for row in rows], default=str)

        # Both sides must be reading the same customers in the same order.
        api_ids = [node["id"] for node in _api_nodes(await api_edges(), "edges")]
        raw_ids = [row["id"] for row in orjson.loads(await raw())]
        if api_ids != raw_ids:
            raise BenchmarkFailed("the API and the raw query returned different customers")

        api_ms, nodes_ms, raw_ms = await h.compare(
            Side("api edges", api_edges, _checker("edges")),
            Side("api nodes", api_nodes, _checker("nodes")),
            Side("raw", raw, _check_raw),
        )
    report("customers_list", api_ms, raw_ms)
    report("customers_list (nodes)", nodes_ms, raw_ms)
