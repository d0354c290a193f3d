"""A customer is re-rated in the transaction of any change to what its rating is
computed from: its creation, its assessment (potential, competition risk) and its
purchases and opportunities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import TenantWorld, World

NAME = "评级随改-客户"
CREATE = (
    "mutation($input: CreateCustomerInput!) {"
    " createCustomer(input: $input, allowPossibleDuplicate: true) { id version } }"
)
UPDATE = (
    "mutation($id: ID!, $v: Int!, $input: UpdateCustomerInput!) {"
    " updateCustomer(id: $id, version: $v, input: $input) { version } }"
)
PURCHASE = (
    "mutation($id: ID!, $input: PurchaseInput!) {"
    " addPurchase(customerId: $id, input: $input) { id } }"
)
RATING = "query($id: ID!) { customer(id: $id) { rating { score trigger criteria { score } } } }"


@pytest.fixture
async def gamma(world: World) -> AsyncIterator[TenantWorld]:
    yield world["gamma"]

    async def remove() -> None:
        await raw_connection().execute("DELETE FROM customer WHERE name = $1", NAME)

    await run_in_tenant(world["gamma"].ref, remove)


async def _rating(api: Api, tenant: TenantWorld, customer_id: str) -> dict[str, Any]:
    reply = await api.post(tenant.slug, tenant.tokens["admin"], RATING, {"id": customer_id})
    rating: dict[str, Any] = reply.ok()["customer"]["rating"]
    return rating


async def _history_rows(tenant: TenantWorld, customer_id: str) -> list[str]:
    async def read() -> list[str]:
        rows = await raw_connection().fetch(
            "SELECT trigger FROM customer_rating WHERE customer_id = $1::uuid ORDER BY id",
            customer_id,
        )
        return [row["trigger"] for row in rows]

    return await run_in_tenant(tenant.ref, read)


async def test_changes_re_rate_at_once(api: Api, gamma: TenantWorld) -> None:
    token = gamma.tokens["admin"]
    values = {"kind": "ENTERPRISE", "name": NAME, "potential": 1, "competitionRisk": "HIGH"}
    created = (await api.post("gamma", token, CREATE, {"input": values})).ok()["createCustomer"]
    first = await _rating(api, gamma, created["id"])
    assert first["trigger"] == "change", "rated when created"

    await api.post(
        "gamma",
        token,
        UPDATE,
        {"id": created["id"], "v": 1, "input": {"potential": 5, "competitionRisk": "LOW"}},
    )
    assessed = await _rating(api, gamma, created["id"])
    assert float(assessed["score"]) > float(first["score"])
    assert [c["score"] for c in assessed["criteria"]][2:] == [100.0, 100.0]

    purchase = {
        "orderNo": "SO-1",
        "product": "年度维保服务",
        "quantity": "1",
        "amount": "90000",
        "cost": "10000",
        "purchasedOn": date.today().isoformat(),
    }
    (await api.post("gamma", token, PURCHASE, {"id": created["id"], "input": purchase})).ok()
    bought = await _rating(api, gamma, created["id"])
    assert float(bought["criteria"][0]["score"]) > 0, "profit counts the new purchase"
    assert await _history_rows(gamma, created["id"]) == ["change", "change", "change"]
