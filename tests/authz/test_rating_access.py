"""Who sees a customer's rating under the default policy, and how much of it.

The rating follows the customer's rating fields (business class): shown where they are
shown in full, else null and listed in extensions.redacted (auditors see business
masked: a grade has no masked form, so hidden). The profit amount in an explanation is
made of purchase costs (financial): only callers who see financial in full on that
customer read it; everyone else gets the rank without the amount.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.rating import rate_customers
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.rating import remove_world_histories, seed_world_histories
from tests.support.world import World

RATING = "score grade criteria { criterion score explanation }"
DETAIL = f"query($id: ID!) {{ customer(id: $id) {{ id rating {{ {RATING} }} }} }}"
LIST = f"{{ customers(first: 500) {{ nodes {{ id rating {{ {RATING} }} }} }} }}"
HISTORY = f"query($id: ID!) {{ ratingHistory(customerId: $id) {{ {RATING} }} }}"
RECOMPUTE = "mutation($id: ID!) { recomputeRating(customerId: $id) { grade } }"
TOP_PROFIT = ("7,500", "7500")  # the "top" history's profit of the last 12 months


@pytest.fixture(scope="module")
async def rated(world: World) -> AsyncIterator[dict[str, uuid.UUID]]:
    ids = await seed_world_histories(world["alpha"])
    await run_in_tenant(world["alpha"].ref, lambda: rate_customers(list(ids.values()), "manual"))
    yield ids
    await remove_world_histories(world["alpha"])


def _redacted(reply: Response) -> list[str]:
    return list((reply.body.get("extensions") or {}).get("redacted") or [])


def _profit_explanation(rating: dict[str, Any]) -> str:
    return next(c["explanation"] for c in rating["criteria"] if c["criterion"] == "PROFIT")


async def test_sales_see_the_ratings_of_their_own_customers_only(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    t = world["alpha"]
    mine = {str(rated[key]) for key in ("top", "mid", "new", "loss", "idle")}
    nodes = (await api.post("alpha", t.tokens["sales"], LIST)).ok()["customers"]["nodes"]
    ratings = {n["id"]: n["rating"] for n in nodes}
    assert mine <= set(ratings) and all(ratings[i] is not None for i in mine)
    other = await api.post("alpha", t.tokens["sales2"], LIST)
    assert not mine & {n["id"] for n in other.ok()["customers"]["nodes"]}
    for query in (DETAIL, HISTORY):
        reply = await api.post("alpha", t.tokens["sales2"], query, {"id": str(rated["top"])})
        assert reply.codes == ["NOT_FOUND"]
        assert '"score":' not in reply.text


async def test_profit_amounts_only_for_financial_readers(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    t = world["alpha"]
    top = {"id": str(rated["top"])}
    for who in ("sales",):
        for query, path in ((DETAIL, ("customer", "rating")), (HISTORY, ("ratingHistory", 0))):
            reply = await api.post("alpha", t.tokens[who], query, top)
            data = reply.ok()
            rating = data[path[0]][path[1]]
            assert "amount withheld" in _profit_explanation(rating)
            assert not any(amount in reply.text for amount in TOP_PROFIT), (who, query)
        listed = await api.post("alpha", t.tokens[who], LIST)
        assert not any(amount in listed.text for amount in TOP_PROFIT)
    for who in ("manager", "admin"):
        rating = (await api.post("alpha", t.tokens[who], DETAIL, top)).ok()["customer"]["rating"]
        assert _profit_explanation(rating).startswith("profit ¥7,500 in the last 12 months")


async def test_auditors_get_the_rating_hidden_and_redacted(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    auditor = world["alpha"].tokens["auditor"]
    top = {"id": str(rated["top"])}
    detail = await api.post("alpha", auditor, DETAIL, top)
    assert detail.ok()["customer"] == {"id": top["id"], "rating": None}
    assert "customer.rating" in _redacted(detail)
    history = await api.post("alpha", auditor, HISTORY, top)
    assert history.ok()["ratingHistory"] is None and _redacted(history) == ["ratingHistory"]
    listed = await api.post("alpha", auditor, LIST)
    nodes = listed.ok()["customers"]["nodes"]
    assert nodes and all(n["rating"] is None for n in nodes)
    assert {f"customers.nodes.{i}.rating" for i in range(len(nodes))} <= set(_redacted(listed))
    for reply in (detail, history, listed):
        assert '"grade":' not in reply.text and '"score":' not in reply.text


async def test_another_tenants_customer_is_not_found(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    admin = world["beta"].tokens["admin"]
    top = {"id": str(rated["top"])}
    for query in (DETAIL, HISTORY, RECOMPUTE):
        reply = await api.post("beta", admin, query, top)
        assert reply.codes == ["NOT_FOUND"], query


async def _share_with_reader(world: World, customer_id: uuid.UUID, level: str) -> None:
    """An approved share of basic + business facts of one customer with the reader app."""
    t = world["alpha"]

    async def share() -> None:
        conn = raw_connection()
        await conn.execute(
            "UPDATE customer SET consents_to_sharing = TRUE WHERE id = $1", customer_id
        )
        app_id = await conn.fetchval("SELECT id FROM partner_app WHERE name = 'reader'")
        request_id = await conn.fetchval(
            "INSERT INTO share_request (grantee_app_id, classes, level, purpose, valid_until,"
            " status, requested_by) VALUES ($1, $2, $3, 'rating-tests',"
            " now() + interval '1 day', 'approved', $4) RETURNING id",
            app_id,
            ["basic", "business"],
            level,
            t.people["admin"].identity_id,
        )
        await conn.execute(
            "INSERT INTO share_request_customer (request_id, customer_id) VALUES ($1, $2)",
            request_id,
            customer_id,
        )

    await run_in_tenant(t.ref, share)


async def test_partner_apps_per_share(api: Api, world: World, rated: dict[str, uuid.UUID]) -> None:
    reader = world["alpha"].keys["reader"]
    top, mid = rated["top"], rated["mid"]
    assert (await api.post("alpha", reader, DETAIL, {"id": str(top)})).codes == ["NOT_FOUND"]
    await _share_with_reader(world, top, "full")
    await _share_with_reader(world, mid, "masked")
    full = await api.post("alpha", reader, DETAIL, {"id": str(top)})
    rating = full.ok()["customer"]["rating"]
    assert rating["grade"] == "A"
    assert "amount withheld" in _profit_explanation(rating)  # apps never see financial
    assert not any(amount in full.text for amount in TOP_PROFIT)
    masked = await api.post("alpha", reader, DETAIL, {"id": str(mid)})
    assert masked.ok()["customer"]["rating"] is None
    assert _redacted(masked) == ["customer.rating"]
    # Reading is not editing: no recompute through a read-only key.
    assert (await api.post("alpha", reader, RECOMPUTE, {"id": str(top)})).codes == ["FORBIDDEN"]
