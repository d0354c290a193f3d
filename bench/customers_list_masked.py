"""``customers(first: 1000)`` as a salesperson, masking on, against the raw floor.

Under the default policy a salesperson sees only the customers they own: contact
details in full, identity (``idNumber``, ``uscc``) masked, financial hidden. Every field
then depends on the row, so the read selects ``CASE WHEN <full> THEN col WHEN <masked>
THEN mask(col) END`` plus a "hidden" flag per field (``dangan.authz.access``) and the
API builds its page from that. The demo splits each tenant's 1,000 customers between
sales, sales2 and manager, so for the duration of this benchmark east's ``sales`` owns
all of them: one ``UPDATE customer SET owner_id, department_id`` on a plain
connection in the tenant's scope (then ``ANALYZE``, so the planner knows), undone at the
end — customers_list runs first anyway, and east's admin sees everyone either way.

API side: ``customers(first: 1000) { nodes { ... } }`` (the ten fields of customers_list)
as east's ``sales``; before timing, the page is compared with the raw rows: contact and
basic fields equal, ``idNumber`` and ``uscc`` masked (contain ``*``, differ from the
value) — and every timed response must have 1,000 nodes with every ``idNumber`` masked.
Also timed, interleaved: east's ``auditor``, who sees every customer with contact and
identity masked (basic facts in full). Floor: customers_list's, unchanged (the raw side
does no masking; it is the floor).

Audit overhead: the sales request is also timed, interleaved, with its audit event left
out (:mod:`bench.unaudited`; the product has no such switch), and the difference is
printed as a percentage of the unaudited time (the issue's budget: at most 10 %).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bench.customers_list import (
    COLUMNS,
    COUNT,
    NODES_QUERY,
    TENANT,
    BenchmarkFailed,
    api_nodes,
    check_raw,
    differences,
    raw_floor,
    raw_rows,
)
from bench.harness import Harness, Side, log, report
from bench.unaudited import without_audit
from dangan.tenants.scope import TenantRef, scope_sql

SALES = "sales"
AUDITOR = "auditor"
# Fields each caller sees masked under the default policy; the others in full.
MASKED: dict[str, frozenset[str]] = {
    SALES: frozenset({"idNumber", "uscc"}),
    AUDITOR: frozenset({"phone", "email", "address", "idNumber", "uscc"}),
}


def check_masked(
    user: str, nodes: list[dict[str, Any]], raw: list[dict[str, Any]] | None = None
) -> None:
    """Every ``idNumber`` (and the user's other masked fields) masked; with the raw rows,
    also the same customers, the rest of the fields in full and the masked ones derived
    from a value (not null where it isn't, never the value itself)."""
    masked = MASKED[user]
    fields = list(masked) if raw is None else list(COLUMNS)
    seen = dict.fromkeys(masked, 0)
    for index, node in enumerate(nodes):
        for field in fields:
            value = node[field]
            if field in masked:
                if value is not None:
                    seen[field] += 1
                    if "*" not in value:
                        raise BenchmarkFailed(f"{user}: [{index}].{field} not masked: {value!r}")
                if raw is not None and (value is None) != (raw[index][field] is None):
                    raise BenchmarkFailed(f"{user}: [{index}].{field} {value!r} for a null")
                if raw is not None and value is not None and value == raw[index][field]:
                    raise BenchmarkFailed(f"{user}: [{index}].{field} is the value itself")
    if not seen["idNumber"]:
        raise BenchmarkFailed(f"{user}: no idNumber at all, so nothing shows it masked")
    if raw is not None:
        if [node["id"] for node in nodes] != [row["id"] for row in raw]:
            raise BenchmarkFailed(f"{user}: the API and raw returned different customers")
        full = [field for field in COLUMNS if field not in masked]
        wrong = differences(nodes, raw, full)
        if wrong:
            raise BenchmarkFailed(f"{user}: {len(wrong)} values not in full: {wrong[:3]}")


def _checker(user: str) -> Callable[[Any], None]:
    def check(response: Any) -> None:
        check_masked(user, api_nodes(response))

    return check


@asynccontextmanager
async def owned_by(h: Harness, tenant: TenantRef, user: str) -> AsyncIterator[dict[str, int]]:
    """Every customer of ``tenant`` owned by ``user`` (and in their department) for the
    duration; the previous owners and departments are put back afterwards."""
    email = h.credentials["tenants"][tenant.slug]["users"][user]["email"]
    scope = scope_sql(tenant)
    async with h.raw_connection() as conn:
        async with conn.transaction():
            await conn.execute(scope)
            member = await conn.fetchrow(
                "SELECT identity_id, department_id FROM member WHERE email = $1", email
            )
            if member is None:
                raise BenchmarkFailed(f"{tenant.slug} has no member {email}")
            before = await conn.fetch("SELECT id, owner_id, department_id FROM customer")
            status = await conn.execute(
                "UPDATE customer SET owner_id = $1, department_id = $2",
                member["identity_id"],
                member["department_id"],
            )
            if status != f"UPDATE {COUNT}":
                raise BenchmarkFailed(f"expected to hand over {COUNT} customers: {status}")
            await conn.execute("ANALYZE customer")
        log(f"{tenant.slug}: {user} (member {member['identity_id']}) owns all {COUNT} customers")
        try:
            yield {"identity_id": member["identity_id"], "department_id": member["department_id"]}
        finally:
            async with conn.transaction():
                await conn.execute(scope)
                await conn.execute(
                    "UPDATE customer c SET owner_id = b.owner_id, department_id = b.department_id"
                    " FROM unnest($1::uuid[], $2::int[], $3::int[])"
                    " AS b(id, owner_id, department_id) WHERE c.id = b.id",
                    [row["id"] for row in before],
                    [row["owner_id"] for row in before],
                    [row["department_id"] for row in before],
                )
                await conn.execute("ANALYZE customer")


async def run(h: Harness) -> None:
    tenant = await h.tenant(TENANT)

    async def as_sales() -> httpx.Response:
        return await h.graphql(TENANT, SALES, NODES_QUERY)

    async def as_auditor() -> httpx.Response:
        return await h.graphql(TENANT, AUDITOR, NODES_QUERY)

    async with owned_by(h, tenant, SALES), h.raw_connection() as conn:
        raw = raw_floor(conn, tenant)
        rows = raw_rows(await raw())
        check_masked(SALES, api_nodes(await as_sales()), rows)
        check_masked(AUDITOR, api_nodes(await as_auditor()), rows)

        sales_ms, auditor_ms, unaudited_ms, raw_ms = await h.compare(
            Side("sales", as_sales, _checker(SALES)),
            Side("auditor", as_auditor, _checker(AUDITOR)),
            Side("sales, unaudited", without_audit(as_sales), _checker(SALES)),
            Side("raw", raw, check_raw),
        )
    report("customers_list_masked", sales_ms, raw_ms)
    report("customers_list_masked (auditor)", auditor_ms, raw_ms)
    overhead = (sales_ms - unaudited_ms) / unaudited_ms * 100
    print(
        f"customers_list_masked audit overhead: {overhead:+.1f}% ({sales_ms:.1f} ms audited"
        f" vs {unaudited_ms:.1f} ms without the event; budget 10%)",
        flush=True,
    )
