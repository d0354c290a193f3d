"""``customers(first: 1000)`` with 10 fields, against raw asyncpg + orjson.

API side: the full HTTP request as east's admin, whom the default policy shows every
customer with every field in full — so the SQL is a plain select, with no policy CASE
(that path is ``customers_list_masked``). Before timing, the admin's page is compared
value by value with the raw rows, and every timed response must come back without
``extensions.redacted``: if a policy change ever masked or hid something from the
admin, this benchmark fails instead of quietly measuring something else.

Floor: a plain asyncpg connection to the same database, one transaction scoped like a
request's (``SET LOCAL search_path`` and ``SET LOCAL ROLE`` — the app role cannot read a
tenant's tables without the role, as the schema belongs to it), the same ten columns in
the same order, ``orjson.dumps`` of the rows as a list of dicts. orjson writes
``uuid.UUID`` natively, but asyncpg decodes ``uuid`` columns to its own
``asyncpg.pgproto.pgproto.UUID``, which orjson refuses, so ``default=str`` converts the
ids (as the API's ``str(row["id"])`` does). Also timed, interleaved with both: the same
list through ``nodes`` instead of ``edges { node }``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson

from bench.harness import Harness, Side, report
from dangan.tenants.scope import TenantRef, scope_sql

TENANT = "east"
USER = "admin"
COUNT = 1000
# The ten fields asked for (GraphQL name → column), in the order of RAW_SQL's select list.
COLUMNS = {
    "id": "id",
    "kind": "kind",
    "name": "name",
    "phone": "phone",
    "email": "email",
    "idNumber": "id_number",
    "uscc": "uscc",
    "address": "address",
    "region": "region",
    "tier": "tier",
}
FIELDS = " ".join(COLUMNS)
EDGES_QUERY = f"{{ customers(first: {COUNT}) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
NODES_QUERY = f"{{ customers(first: {COUNT}) {{ nodes {{ {FIELDS} }} }} }}"
RAW_SQL = (
    f"SELECT {', '.join(COLUMNS.values())} FROM customer ORDER BY created_at, id LIMIT {COUNT}"
)
FIELD_COUNT = len(COLUMNS)


class BenchmarkFailed(AssertionError):
    pass


def api_body(response: httpx.Response) -> dict[str, Any]:
    """The decoded body of a successful response, or a loud failure saying what came back."""
    if response.status_code != 200:
        raise BenchmarkFailed(f"HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = orjson.loads(response.content)
    if body.get("errors"):
        raise BenchmarkFailed(f"GraphQL errors: {body['errors']}")
    return body


def api_nodes(response: httpx.Response, shape: str = "nodes") -> list[dict[str, Any]]:
    """The customer nodes of a response: exactly COUNT of them, with every field, and
    nothing redacted (none of these fields is hidden from the benchmarks' callers)."""
    body = api_body(response)
    page = body["data"]["customers"]
    nodes: list[dict[str, Any]] = (
        [edge["node"] for edge in page["edges"]] if shape == "edges" else page["nodes"]
    )
    if len(nodes) != COUNT:
        raise BenchmarkFailed(f"expected {COUNT} customers, got {len(nodes)}")
    if len(nodes[0]) != FIELD_COUNT:
        raise BenchmarkFailed(f"expected {FIELD_COUNT} fields, got {sorted(nodes[0])}")
    redacted = (body.get("extensions") or {}).get("redacted")
    if redacted:
        raise BenchmarkFailed(f"{len(redacted)} values redacted, e.g. {redacted[:5]}")
    return nodes


def _checker(shape: str) -> Callable[[Any], None]:
    def check(response: Any) -> None:
        api_nodes(response, shape)

    return check


def raw_rows(payload: bytes) -> list[dict[str, Any]]:
    """The floor's rows, keyed by GraphQL field name like the API's nodes."""
    rows = orjson.loads(payload)
    if len(rows) != COUNT or len(rows[0]) != FIELD_COUNT:
        raise BenchmarkFailed(f"the raw query did not return {COUNT} rows of {FIELD_COUNT}")
    return [{field: row[column] for field, column in COLUMNS.items()} for row in rows]


def check_raw(payload: Any) -> None:
    raw_rows(payload)


def raw_floor(conn: asyncpg.Connection, tenant: TenantRef) -> Callable[[], Awaitable[bytes]]:
    """The floor: the page read on a plain connection, scoped like a request, as JSON."""
    scope = scope_sql(tenant)

    async def raw() -> bytes:
        async with conn.transaction():
            await conn.execute(scope)
            rows: list[asyncpg.Record] = await conn.fetch(RAW_SQL)
        return orjson.dumps([dict(row) for row in rows], default=str)

    return raw


def differences(
    api: list[dict[str, Any]], raw: list[dict[str, Any]], fields: list[str]
) -> list[str]:
    """Where the API's ``fields`` differ from the raw rows' (a few examples)."""
    found = []
    for index, (node, row) in enumerate(zip(api, raw, strict=True)):
        for field in fields:
            if node[field] != row[field]:
                found.append(f"[{index}].{field}: {node[field]!r} != {row[field]!r}")
    return found


async def run(h: Harness) -> None:
    tenant = await h.tenant(TENANT)

    async def api_edges() -> httpx.Response:
        return await h.graphql(TENANT, USER, EDGES_QUERY)

    async def api_nodes_query() -> httpx.Response:
        return await h.graphql(TENANT, USER, NODES_QUERY)

    async with h.raw_connection() as conn:
        raw = raw_floor(conn, tenant)

        # Both sides must read the same customers in the same order, and the admin must
        # see every value in full (no masking, nothing hidden): the same values as raw.
        rows = raw_rows(await raw())
        for shape, response in (("edges", await api_edges()), ("nodes", await api_nodes_query())):
            nodes = api_nodes(response, shape)
            if [node["id"] for node in nodes] != [row["id"] for row in rows]:
                raise BenchmarkFailed(f"the API ({shape}) and raw returned different customers")
            wrong = differences(nodes, rows, list(COLUMNS))
            if wrong:
                raise BenchmarkFailed(
                    f"{USER} does not see {len(wrong)} values in full: {wrong[:3]}"
                )

        api_ms, nodes_ms, raw_ms = await h.compare(
            Side("api edges", api_edges, _checker("edges")),
            Side("api nodes", api_nodes_query, _checker("nodes")),
            Side("raw", raw, check_raw),
        )
    report("customers_list", api_ms, raw_ms)
    report("customers_list (nodes)", nodes_ms, raw_ms)
