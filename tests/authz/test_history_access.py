"""The change history shows each value as the viewer's policy shows its field: in full,
masked, or not at all (a field hidden from the viewer is left out of the change, and a
change with nothing the viewer may see is left out of the timeline)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.identifiers import make_id_number, make_mobile
from tests.support.api import Api, Response
from tests.support.cleanup import remove_customers
from tests.support.shares import app_share
from tests.support.world import TENANTS, TenantWorld, World

CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input, allowPossibleDuplicate: true) { id } }"
UPDATE = """mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, version: $version, input: $input) { version pendingChanges { id } } }"""
APPROVE = "mutation($id: ID!) { approveChange(id: $id) { id status } }"
HISTORY = """query($id: ID!) { customerHistory(id: $id) {
  nodes { action status fields { field oldValue newValue } } } }"""
PENDING_ON = """query($id: ID!) { customer(id: $id) { id
  pendingChanges { fields { field oldValue newValue } } } }"""

OLD_ID = make_id_number(random.Random("history old"), region="33")
NEW_ID = make_id_number(random.Random("history new"), region="11")


@pytest.fixture(scope="module", autouse=True)
async def _leave_the_world_as_it_was(world: World) -> AsyncIterator[None]:
    yield
    await remove_customers(world, "历史-")


def _token(tenant: TenantWorld, who: str) -> str:
    return tenant.keys[who] if who in ("reader", "writer") else tenant.tokens[who]


async def _post(api: Api, tenant: TenantWorld, who: str, query: str, **variables: Any) -> Response:
    return await api.post(tenant.slug, _token(tenant, who), query, variables)


async def _prepare(api: Api, tenant: TenantWorld, label: str) -> str:
    """A customer of sales whose phone, ID number, birthday, annual revenue and credit
    rating were changed (the last four approved by the manager)."""
    values = {
        "kind": "INDIVIDUAL",
        "name": f"历史-{label}",
        "phone": make_mobile(random.Random(label)),
        "idNumber": OLD_ID,
        "birthday": "1990-03-07",
        "annualRevenue": "50000",
        "creditRating": "BB",
        "ownerId": tenant.people["sales"].identity_id,
    }
    ident = str(
        (await _post(api, tenant, "admin", CREATE, input=values)).ok()["createCustomer"]["id"]
    )
    changes = {
        "phone": "13900007777",
        "idNumber": NEW_ID,
        "birthday": "1991-04-08",
        "annualRevenue": "2500000",
        "creditRating": "AAA",
    }
    reply = (await _post(api, tenant, "admin", UPDATE, id=ident, version=1, input=changes)).ok()
    [pending] = reply["updateCustomer"]["pendingChanges"]
    (await _post(api, tenant, "manager", APPROVE, id=pending["id"])).ok()
    return ident


def _by_field(nodes: list[dict[str, Any]]) -> dict[str, dict[str, tuple[Any, Any]]]:
    """action/status → field → (old, new) for the two updates and the create."""
    shaped: dict[str, dict[str, tuple[Any, Any]]] = {}
    for node in nodes:
        shaped[f"{node['action']}/{node['status']}"] = {
            f["field"]: (f["oldValue"], f["newValue"]) for f in node["fields"]
        }
    return shaped


def _masked_id(value: str) -> str:
    return value[:6] + "********" + value[-4:]


async def test_each_viewer_sees_the_history_as_their_policy_says(api: Api, world: World) -> None:
    tenant = world["alpha"]
    ident = await _prepare(api, tenant, "viewers")

    admin = _by_field(
        (await _post(api, tenant, "admin", HISTORY, id=ident)).ok()["customerHistory"]["nodes"]
    )
    assert admin["update/APPROVED"]["idNumber"] == (OLD_ID, NEW_ID)
    assert admin["update/APPROVED"]["annualRevenue"] == ("50000.00", "2500000.00")
    assert admin["update/APPLIED"] == {
        "phone": (admin["create/APPLIED"]["phone"][1], "13900007777")
    }

    sales_reply = await _post(api, tenant, "sales", HISTORY, id=ident)
    sales = _by_field(sales_reply.ok()["customerHistory"]["nodes"])
    approved = sales["update/APPROVED"]
    assert approved["idNumber"] == (_masked_id(OLD_ID), _masked_id(NEW_ID)), "identity masked"
    assert approved["birthday"] == ("1990-**-**", "1991-**-**")
    assert "annualRevenue" not in approved and "creditRating" not in approved, "financial hidden"
    assert "annualRevenue" not in sales["create/APPLIED"]
    for secret in (OLD_ID, NEW_ID, "2500000", "AAA", "50000", "1990-03-07"):
        assert secret not in sales_reply.text, secret

    auditor_reply = await _post(api, tenant, "auditor", HISTORY, id=ident)
    auditor = _by_field(auditor_reply.ok()["customerHistory"]["nodes"])
    assert auditor["update/APPROVED"]["annualRevenue"] == ("< 100,000", "1,000,000 – 10,000,000")
    assert auditor["update/APPROVED"]["creditRating"] == ("B**", "A**")
    assert auditor["update/APPROVED"]["idNumber"][1] == _masked_id(NEW_ID)
    assert auditor["update/APPLIED"]["phone"][1] == "139****7777"
    for secret in (OLD_ID, NEW_ID, "2500000", "AAA", "13900007777"):
        assert secret not in auditor_reply.text, secret


async def test_a_change_of_hidden_fields_only_is_left_out(api: Api, world: World) -> None:
    tenant = world["beta"]
    values = {
        "kind": "INDIVIDUAL",
        "name": "历史-仅财务",
        "creditRating": "BB",
        "ownerId": tenant.people["sales"].identity_id,
    }
    ident = str(
        (await _post(api, tenant, "admin", CREATE, input=values)).ok()["createCustomer"]["id"]
    )
    reply = await _post(
        api, tenant, "admin", UPDATE, id=ident, version=1, input={"creditRating": "A"}
    )
    [pending] = reply.ok()["updateCustomer"]["pendingChanges"]
    sales_view = (await _post(api, tenant, "sales", PENDING_ON, id=ident)).ok()["customer"]
    assert sales_view["pendingChanges"] == [], "sales may not see financial values"
    manager_view = (await _post(api, tenant, "manager", PENDING_ON, id=ident)).ok()["customer"]
    assert manager_view["pendingChanges"][0]["fields"] == [
        {"field": "creditRating", "oldValue": "BB", "newValue": "A"}
    ]
    (await _post(api, tenant, "manager", APPROVE, id=pending["id"])).ok()
    nodes = (await _post(api, tenant, "sales", HISTORY, id=ident)).ok()["customerHistory"]["nodes"]
    assert [n["action"] for n in nodes] == ["create"]


async def test_partner_apps_see_only_what_is_shared(api: Api, world: World) -> None:
    tenant = world["gamma"]
    ident = await _prepare(api, tenant, "apps")
    unshared = await _post(api, tenant, "reader", HISTORY, id=ident)
    assert unshared.codes == ["NOT_FOUND"]
    async with app_share(tenant, ident, "reader", ["basic"]):
        reply = await _post(api, tenant, "reader", HISTORY, id=ident)
        nodes = _by_field(reply.ok()["customerHistory"]["nodes"])
        assert set(nodes) == {"create/APPLIED"}, "contact, identity, financial changes left out"
        assert set(nodes["create/APPLIED"]) <= {
            "kind",
            "name",
            "tier",
            "ownerId",
            "departmentId",
            "consentsToSharing",
            "tags",
        }
        for secret in (OLD_ID, NEW_ID, "13900007777", "AAA"):
            assert secret not in reply.text
    gone = await _post(api, tenant, "reader", HISTORY, id=ident)
    assert gone.codes == ["NOT_FOUND"]


async def test_another_tenant_or_an_unseen_customer_is_not_found(api: Api, world: World) -> None:
    tenant = world["beta"]  # alpha and gamma hold a customer with the same ID numbers
    ident = await _prepare(api, tenant, "unseen")
    missing = await _post(api, tenant, "sales2", HISTORY, id="00000000-0000-0000-0000-000000000000")
    unseen = await _post(api, tenant, "sales2", HISTORY, id=ident)
    assert unseen.codes == ["NOT_FOUND"] and unseen.body == missing.body
    for slug in (slug for slug in TENANTS if slug != "beta"):
        foreign = await _post(api, world[slug], "admin", HISTORY, id=ident)
        assert foreign.codes == ["NOT_FOUND"] and "历史-unseen" not in foreign.text
