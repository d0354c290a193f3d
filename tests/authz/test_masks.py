"""Masked forms that say more (or other) than they should."""

from __future__ import annotations

from collections import defaultdict

from dangan.services.customers import create_customer
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.authz.conftest import Scratch
from tests.authz.queries import DETAIL, LIST_NODES
from tests.support.api import Api


async def test_an_empty_amount_stays_empty_when_masked(api: Api, scratch: Scratch) -> None:
    values = {"kind": "ENTERPRISE", "name": "没有金额的公司", "phone": "13812345678"}
    ident = await run_in_tenant(
        scratch.ref, lambda: create_customer(scratch.caller("admin"), values)
    )
    reply = await api.post(scratch.slug, scratch.tokens["auditor"], DETAIL, {"id": ident})
    node = reply.ok()["customer"]
    assert node["phone"] == "138****5678", "contact is masked"
    assert node["email"] is None and node["creditRating"] is None, "empty stays empty"
    assert (node["annualRevenue"], node["paymentCapacity"]) == (None, None)


async def test_a_masked_credit_rating_does_not_tell_the_rating(api: Api, scratch: Scratch) -> None:
    admin = scratch.caller("admin")
    for rating in ("A", "AA", "AAA", "B", "BB", "BBB"):
        values = {"kind": "ENTERPRISE", "name": f"评级{rating}", "credit_rating": rating}
        await run_in_tenant(
            scratch.ref,
            lambda v=values: create_customer(admin, v, allow_possible_duplicate=True),
        )

    async def ratings() -> dict[str, str]:
        rows = await raw_connection().fetch(
            "SELECT id, credit_rating FROM customer WHERE name LIKE '评级%'"
        )
        return {str(r["id"]): r["credit_rating"] for r in rows}

    raw = await run_in_tenant(scratch.ref, ratings)
    reply = await api.post(
        scratch.slug,
        scratch.tokens["auditor"],
        LIST_NODES,
        {"first": 10, "where": [{"field": "name", "op": "CONTAINS", "value": "评级"}]},
    )
    masks: dict[str, set[str]] = defaultdict(set)
    for node in reply.ok()["customers"]["nodes"]:
        rating = raw[node["id"]]
        assert node["creditRating"] != rating, f"{rating} shown in full"
        masks[rating[0]].add(node["creditRating"])
    assert all(len(forms) == 1 for forms in masks.values()), dict(masks)
