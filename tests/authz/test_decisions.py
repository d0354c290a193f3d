"""Decisions are made per request and access path, never per row: the number of Oso
queries for a list doesn't depend on how many customers it returns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dangan.authz.engine import PolicyEngine
from dangan.authz.store import POLICIES, read_policy_dir
from dangan.models.archive import CUSTOMER_FIELDS, SENSITIVITY_CLASSES
from dangan.services.customers import list_customers
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.authz.conftest import SCRATCH_CUSTOMERS, Scratch
from tests.support.api import Api

LIST = """
query($first: Int!) {
  customers(first: $first) {
    totalCount
    nodes { id name phone idNumber gender annualRevenue remarks owner { id } }
  }
}"""
ROLES = ("sales", "auditor", "admin")


def fresh_engine(settings: Settings) -> PolicyEngine:
    files = read_policy_dir(settings.policy_dir)
    return PolicyEngine({name: text for name, text in files.items() if name.endswith(".polar")})


@contextmanager
def pinned(tenant_id: int, engine: PolicyEngine) -> Iterator[PolicyEngine]:
    """``engine`` serves ``tenant_id`` in this process for the block; then the store is
    as it was (the previous pinned engine back, or no entry)."""
    previous = POLICIES._by_tenant.get(tenant_id)
    POLICIES.activate(tenant_id, engine)
    try:
        yield engine
    finally:
        if previous is None:
            POLICIES._by_tenant.pop(tenant_id, None)
        else:
            POLICIES._by_tenant[tenant_id] = previous


async def oso_calls_for_lists(api: Api, scratch: Scratch, engine: PolicyEngine, rows: int) -> int:
    with pinned(scratch.ref.id, engine):
        for role in ROLES:
            reply = await api.post(scratch.slug, scratch.tokens[role], LIST, {"first": rows})
            page = reply.ok()["customers"]
            assert page["totalCount"] >= SCRATCH_CUSTOMERS, role
            assert len(page["nodes"]) == rows, role
            if role == "auditor":
                assert all("****" in node["phone"] for node in page["nodes"])
    return engine.oso_calls


async def test_oso_calls_do_not_grow_with_the_number_of_rows(
    api: Api, scratch: Scratch, settings: Settings
) -> None:
    had_pin = scratch.ref.id in POLICIES._by_tenant
    small, large = fresh_engine(settings), fresh_engine(settings)
    assert small.oso_calls == large.oso_calls == 0
    ten = await oso_calls_for_lists(api, scratch, small, 10)
    thousand = await oso_calls_for_lists(api, scratch, large, SCRATCH_CUSTOMERS)
    assert ten == thousand > 0
    # Each (actor, question) once: rows, then full / masked / match per class.
    assert thousand <= len(ROLES) * (1 + 3 * len(SENSITIVITY_CLASSES))
    # Another round of requests asks Oso nothing new: decisions live with the engine.
    assert await oso_calls_for_lists(api, scratch, large, 10) == thousand
    assert (scratch.ref.id in POLICIES._by_tenant) is had_pin, "the store is restored"


async def test_a_page_for_a_salesperson_does_not_wait_for_the_jit(scratch: Scratch) -> None:
    columns = [column for column in CUSTOMER_FIELDS]

    async def timed(jit: str) -> float:
        conn = raw_connection()
        if not await conn.fetchval("SELECT pg_jit_available()"):
            pytest.skip("this PostgreSQL has no JIT (e.g. the embedded stack)")
        # PostgreSQL's defaults, whatever the server's configuration says.
        await conn.execute(f"SET LOCAL jit = {jit}; SET LOCAL jit_above_cost = 100000")
        started = time.perf_counter()
        page = await list_customers(
            scratch.caller("sales"), first=50, columns=columns, with_total=True
        )
        assert len(page.rows) == 50
        return time.perf_counter() - started

    without = await run_in_tenant(scratch.ref, lambda: timed("off"))
    with_jit = await run_in_tenant(scratch.ref, lambda: timed("on"))
    assert with_jit < max(0.5, 5 * without), (with_jit, without)
