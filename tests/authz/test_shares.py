"""Approved shares (共享): access that varies from row to row within one list.

Shares are made through the sharing service (requested, then approved by the admin) and
deleted after each test. With them a field can be readable in full on one customer,
masked on another and hidden on a third — for the same caller in the same list — which
is where a filter could turn into an existence oracle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dangan.services.callers import Caller
from dangan.services.sharing import Grantee, decide_share, request_share
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.authz.conftest import Scratch
from tests.authz.model import snapshot
from tests.authz.queries import DETAIL, DETAIL_NAME, IDS, LIST_NODES
from tests.authz.samples import PURPOSE, SAMPLE, Samples
from tests.support.api import Api, Response
from tests.support.world import TenantWorld, World, missing_id

SLUG = "alpha"


async def share(
    tenant: Any,
    requester: Caller,
    approver: Caller | None,
    grantee: Grantee,
    classes: Sequence[str],
    level: str,
    customer_ids: Sequence[str],
) -> str:
    """A share request, approved unless ``approver`` is None (then it stays pending)."""

    async def work() -> str:
        row = await request_share(
            requester,
            grantee=grantee,
            classes=classes,
            level=level,
            purpose=PURPOSE,
            until=datetime.now(UTC) + timedelta(days=1),
            customer_ids=customer_ids,
        )
        if approver is not None:
            await decide_share(approver, str(row["id"]), approve=True, comment="authz tests")
        return str(row["id"])

    return await run_in_tenant(tenant, work)


async def drop_shares(tenant: Any) -> None:
    async def work() -> None:
        await raw_connection().execute("DELETE FROM share_request WHERE purpose = $1", PURPOSE)

    await run_in_tenant(tenant, work)


@pytest.fixture
async def alpha(world: World, samples: Samples) -> AsyncIterator[TenantWorld]:
    yield world[SLUG]
    await drop_shares(world[SLUG].ref)


def ids(reply: Response) -> list[str]:
    return [node["id"] for node in reply.ok()["customers"]["nodes"]]


async def names_to_ids(tenant: TenantWorld) -> dict[str, str]:
    snap = await snapshot(tenant)
    return {row["name"]: str(row["id"]) for row in snap.rows}


async def test_a_field_shared_masked_never_matches_a_filter_and_full_matches_only_there(
    api: Api, alpha: TenantWorld, samples: Samples
) -> None:
    by_name = await names_to_ids(alpha)
    x = by_name[f"{SAMPLE}-alpha-sales-个人"]  # a colleague's customer (一组)
    own = [by_name[f"{SAMPLE}-alpha-sales2-个人"], by_name[f"{SAMPLE}-alpha-sales2-企业"]]
    sales2 = Grantee("user", alpha.people["sales2"].identity_id)
    manager, admin = alpha.caller("manager"), alpha.caller("admin")
    await share(alpha.ref, manager, admin, sales2, ["contact"], "masked", [x])
    await share(alpha.ref, manager, admin, sales2, ["financial"], "full", [x])
    snap = await snapshot(alpha)
    row = snap.row(x)
    token = alpha.tokens["sales2"]

    async def where(condition: dict[str, Any]) -> Response:
        return await api.post(SLUG, token, IDS, {"first": 100, "where": [condition]})

    # What sales2 sees of x: basic in full (the share), contact masked, financial full,
    # identity and notes hidden.
    detail = await api.post(SLUG, token, DETAIL, {"id": x})
    node = detail.ok()["customer"]
    assert node["name"] == row["name"]
    assert node["phone"] == f"{row['phone'][:3]}****{row['phone'][-4:]}"
    assert node["annualRevenue"] == str(row["annual_revenue"])
    assert node["idNumber"] is None and node["remarks"] is None
    hidden = set(detail.body["extensions"]["redacted"])
    assert {"customer.idNumber", "customer.remarks", "customer.gender"} <= hidden
    assert "customer.phone" not in hidden and "customer.annualRevenue" not in hidden
    assert row["phone"] not in detail.text and row["remarks"] not in detail.text

    # Masked for sales2 on x: exact and partial matches never find x.
    assert x not in ids(await where({"field": "phone", "op": "EQ", "value": row["phone"]}))
    contains = {"field": "phone", "op": "CONTAINS", "value": row["phone"][2:9]}
    assert x not in ids(await where(contains))
    assert x not in ids(await where({"field": "email", "op": "IS_NULL"}))
    # Full on x only: revenue filters find x and none of sales2's own customers, whose
    # revenue (also > 0) is hidden from them.
    assert ids(await where({"field": "annualRevenue", "op": "GT", "value": "0"})) == [x]
    exact = {"field": "annualRevenue", "op": "EQ", "value": str(row["annual_revenue"])}
    assert ids(await where(exact)) == [x]
    # Notes: full on their own customers, hidden on x.
    found = ids(await where({"field": "remarks", "op": "CONTAINS", "value": "秘密"}))
    assert x not in found and set(own) <= set(found)
    # The list shows the same per-row mix.
    listed = await api.post(SLUG, token, LIST_NODES, {"first": 100})
    nodes = {n["id"]: n for n in listed.ok()["customers"]["nodes"]}
    assert nodes[x]["annualRevenue"] == str(row["annual_revenue"])
    for mine in own:
        assert nodes[mine]["annualRevenue"] is None
    assert row["remarks"] not in listed.text and row["phone"] not in listed.text


async def test_a_partner_app_sees_consenting_customers_shared_with_it_and_never_identity(
    api: Api, alpha: TenantWorld, samples: Samples
) -> None:
    by_name = await names_to_ids(alpha)
    consenting = by_name[f"{SAMPLE}-alpha-sales-企业"]
    refusing = by_name[f"{SAMPLE}-alpha-sales-个人"]  # consents_to_sharing is false
    pending = by_name[f"{SAMPLE}-alpha-sales2-企业"]
    snap = await snapshot(alpha)
    reader = Grantee("app", snap.app_ids["reader"])
    sales, admin = alpha.caller("sales"), alpha.caller("admin")
    classes = ["basic", "contact", "identity", "financial"]
    await share(alpha.ref, sales, admin, reader, classes, "full", [consenting, refusing])
    await share(alpha.ref, alpha.caller("sales2"), None, reader, classes, "full", [pending])
    key = alpha.keys["reader"]
    row = snap.row(consenting)

    listed = await api.post(SLUG, key, LIST_NODES, {"first": 100})
    page = listed.ok()["customers"]
    assert [n["id"] for n in page["nodes"]] == [consenting] and page["totalCount"] == 1
    node = page["nodes"][0]
    assert (node["name"], node["phone"], node["email"]) == (row["name"], row["phone"], row["email"])
    assert node["uscc"] is None and node["annualRevenue"] is None and node["remarks"] is None
    assert {
        "customers.nodes.0.uscc",
        "customers.nodes.0.annualRevenue",
        "customers.nodes.0.creditRating",
        "customers.nodes.0.remarks",
    } <= set(listed.body["extensions"]["redacted"])
    assert row["uscc"] not in listed.text and str(row["annual_revenue"]) not in listed.text

    missing = await api.post(SLUG, key, DETAIL_NAME, {"id": missing_id()})
    for other in (refusing, pending):
        assert (await api.post(SLUG, key, DETAIL_NAME, {"id": other})).body == missing.body
    found = await api.post(SLUG, key, IDS, {"first": 10, "search": "sales-企业"})
    assert ids(found) == [consenting]
    # Identity and financial can never be shared with an app: unknown, like a missing field.
    for field in ("uscc", "annualRevenue"):
        condition = {"field": field, "op": "EQ", "value": "x"}
        reply = await api.post(SLUG, key, IDS, {"first": 5, "where": [condition]})
        nowhere = await api.post(
            SLUG, key, IDS, {"first": 5, "where": [{**condition, "field": "salary"}]}
        )
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["message"].replace(field, "salary") == nowhere.errors[0]["message"]


async def test_a_user_without_department_does_not_see_other_peoples_shares(
    api: Api, scratch: Scratch
) -> None:
    snap_ids = await run_in_tenant(
        scratch.ref,
        lambda: raw_connection().fetch("SELECT id FROM customer ORDER BY name LIMIT 1"),
    )
    shared = str(snap_ids[0]["id"])
    people = scratch.people
    sales2 = Grantee("user", people["sales2"].identity_id)

    assert people["nodept"].department_id is None
    try:
        await share(
            scratch.ref,
            scratch.caller("manager"),
            scratch.caller("admin"),
            sales2,
            ["contact"],
            "full",
            [shared],
        )
        for who, expected in (("sales2", [shared]), ("nodept", [])):
            reply = await api.post(scratch.slug, scratch.tokens[who], IDS, {"first": 10})
            assert ids(reply) == expected, who
    finally:
        await drop_shares(scratch.ref)
