"""A customer's records through GraphQL: a full enterprise profile added and read back,
status changes, removal with a reason, and nested reads batched for a page."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from dangan.services.customers import create_customer
from dangan.services.identifiers import make_mobile, make_uscc
from dangan.tenants import scope
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import TenantWorld, World

PREFIX = "记录测试"  # every customer these tests create; removed at the end
TODAY = date.today()

ADD = {
    "contactPerson": ("addContactPerson", "ContactPersonInput", "id name phone isPrimary"),
    "communication": (
        "addCommunication",
        "CommunicationInput",
        "id channel summary staffId contactPersonId staff { email }",
    ),
    "opportunity": ("addOpportunity", "OpportunityInput", "id title stage expectedAmount"),
    "purchase": ("addPurchase", "PurchaseInput", "id orderNo quantity amount cost"),
    "contract": ("addContract", "ContractInput", "id number status amount parties"),
    "paymentRecord": ("addPaymentRecord", "PaymentRecordInput", "id amount paidAmount dueOn"),
    "need": ("addCustomerNeed", "CustomerNeedInput", "id kind description"),
    "complaint": ("addComplaint", "ComplaintInput", "id status severity summary"),
    "survey": ("addSatisfactionSurvey", "SatisfactionSurveyInput", "id score comment"),
}

PROFILE = """query($id: ID!) { customer(id: $id) {
  name overdueAmount
  contactPersons { name phone email title isPrimary }
  communications { channel summary occurredAt nextStep staff { email } contactPersonId }
  opportunities { title stage expectedAmount expectedClose }
  purchases { orderNo product quantity amount cost purchasedOn }
  contracts { number kind title parties status amount startsOn endsOn }
  paymentRecords { dueOn amount paidAmount paidOn contractId }
  needs { kind description }
  complaints { summary status severity resolution }
  satisfactionSurveys { score comment surveyedOn }
} }"""


async def add(
    api: Api, tenant: TenantWorld, who: str, kind: str, customer_id: str, values: dict[str, Any]
) -> Any:
    mutation, input_type, fields = ADD[kind]
    query = (
        f"mutation($c: ID!, $i: {input_type}!) {{ {mutation}(customerId: $c, input: $i)"
        f" {{ {fields} }} }}"
    )
    credential = tenant.keys.get(who) or tenant.tokens[who]
    return await api.post(tenant.slug, credential, query, {"c": customer_id, "i": values})


async def new_customer(tenant: TenantWorld, owner: str, label: str) -> str:
    values = {
        "kind": "ENTERPRISE",
        "name": f"{PREFIX}-{label}",
        "phone": make_mobile(random.Random(label)),
        "uscc": make_uscc(random.Random(label)),
        "region": "浙江省",
        "owner_id": tenant.people[owner].identity_id,
    }
    admin = tenant.caller("admin")
    return await run_in_tenant(
        tenant.ref, lambda: create_customer(admin, values, allow_possible_duplicate=True)
    )


@pytest.fixture(scope="module")
async def alpha(world: World) -> AsyncIterator[TenantWorld]:
    yield world["alpha"]

    async def remove() -> None:
        await raw_connection().execute("DELETE FROM customer WHERE name LIKE $1", f"{PREFIX}%")

    await run_in_tenant(world["alpha"].ref, remove)


async def changes_of(tenant: TenantWorld, customer_id: str) -> list[tuple[str, str]]:
    async def read() -> Any:
        return await raw_connection().fetch(
            "SELECT action, record_type FROM customer_change WHERE customer_id = $1::uuid"
            " ORDER BY id",
            customer_id,
        )

    return [(r["action"], r["record_type"]) for r in await run_in_tenant(tenant.ref, read)]


async def test_full_enterprise_profile(api: Api, alpha: TenantWorld) -> None:
    cid = await new_customer(alpha, "sales", "企业档案")
    first = (
        await add(
            api,
            alpha,
            "sales",
            "contactPerson",
            cid,
            {"name": "王经理", "phone": "+86 139-0000-1111", "isPrimary": True},
        )
    ).ok()["addContactPerson"]
    assert first["phone"] == "13900001111" and first["isPrimary"] is True
    (
        await add(
            api,
            alpha,
            "sales",
            "contactPerson",
            cid,
            {"name": "李会计", "email": "li@Example.COM", "title": "财务"},
        )
    ).ok()
    sales_email = alpha.people["sales"].email
    communication = (
        await add(
            api,
            alpha,
            "sales",
            "communication",
            cid,
            {
                "channel": "VISIT",
                "occurredAt": "2024-05-01T10:00:00+08:00",
                "summary": "上门拜访，了解明年采购计划",
                "contactPersonId": first["id"],
            },
        )
    ).ok()["addCommunication"]
    assert communication["staffId"] == alpha.people["sales"].identity_id
    assert communication["staff"]["email"] == sales_email
    (
        await add(
            api,
            alpha,
            "sales",
            "communication",
            cid,
            {
                "channel": "CALL",
                "occurredAt": "2024-06-01T09:30:00+08:00",
                "summary": "电话确认报价",
                "nextStep": "发送合同草稿",
                "nextStepDue": "2024-06-10",
            },
        )
    ).ok()
    opportunity = (
        await add(
            api,
            alpha,
            "sales",
            "opportunity",
            cid,
            {
                "title": "2025 年度采购",
                "expectedAmount": "1200000.50",
                "expectedClose": "2025-03-31",
            },
        )
    ).ok()["addOpportunity"]
    assert opportunity["stage"] == "LEAD" and opportunity["expectedAmount"] == "1200000.50"
    for n, day in enumerate(("2024-01-15", "2024-04-20")):
        purchase = (
            await add(
                api,
                alpha,
                "admin",
                "purchase",
                cid,
                {
                    "orderNo": f"PO-{n}",
                    "product": "服务器",
                    "quantity": "2.5",
                    "amount": "30000",
                    "cost": "21000.10",
                    "purchasedOn": day,
                },
            )
        ).ok()["addPurchase"]
        assert purchase["amount"] == "30000.00" and purchase["cost"] == "21000.10"
    contract = (
        await add(
            api,
            alpha,
            "admin",
            "contract",
            cid,
            {
                "number": f"HT-{cid[:8]}",
                "title": "年度服务合同",
                "parties": ["甲方", "乙方"],
                "startsOn": "2024-01-01",
                "endsOn": "2024-12-31",
                "amount": "500000",
            },
        )
    ).ok()["addContract"]
    assert contract["status"] == "DRAFT" and contract["parties"] == ["甲方", "乙方"]
    payments = [
        (TODAY - timedelta(days=30), "1000", "400"),  # 600 overdue
        (TODAY - timedelta(days=10), "250.50", "0"),  # 250.50 overdue
        (TODAY - timedelta(days=60), "800", "800"),  # paid
        (TODAY + timedelta(days=10), "5000", "0"),  # not due yet
    ]
    for due, amount, paid in payments:
        (
            await add(
                api,
                alpha,
                "admin",
                "paymentRecord",
                cid,
                {
                    "dueOn": due.isoformat(),
                    "amount": amount,
                    "paidAmount": paid,
                    "contractId": contract["id"],
                },
            )
        ).ok()
    (
        await add(
            api,
            alpha,
            "sales",
            "need",
            cid,
            {"kind": "INTENTION", "description": "希望增加运维服务"},
        )
    ).ok()
    complaint = (
        await add(
            api,
            alpha,
            "sales",
            "complaint",
            cid,
            {"receivedAt": "2024-07-01T08:00:00+08:00", "summary": "交付延期", "severity": "HIGH"},
        )
    ).ok()["addComplaint"]
    assert complaint["status"] == "OPEN"
    (
        await add(
            api,
            alpha,
            "sales",
            "survey",
            cid,
            {"surveyedOn": "2024-08-01", "score": 4, "comment": "整体满意"},
        )
    ).ok()

    profile = (await api.post("alpha", alpha.tokens["admin"], PROFILE, {"id": cid})).ok()
    customer = profile["customer"]
    assert [p["name"] for p in customer["contactPersons"]] == ["李会计", "王经理"]
    assert customer["contactPersons"][0]["email"] == "li@example.com"
    assert [c["channel"] for c in customer["communications"]] == ["CALL", "VISIT"]
    assert customer["communications"][1]["contactPersonId"] == first["id"]
    assert [p["orderNo"] for p in customer["purchases"]] == ["PO-1", "PO-0"]
    assert customer["purchases"][0]["quantity"] == "2.500"
    assert customer["contracts"][0]["amount"] == "500000.00"
    assert len(customer["paymentRecords"]) == 4
    assert {p["contractId"] for p in customer["paymentRecords"]} == {contract["id"]}
    assert customer["overdueAmount"] == "850.50"
    assert customer["needs"][0]["kind"] == "INTENTION"
    assert customer["complaints"][0]["severity"] == "HIGH"
    assert customer["satisfactionSurveys"][0]["score"] == 4
    assert "extensions" not in profile

    added = await changes_of(alpha, cid)
    assert added.count(("add", "payment_record")) == 4
    assert ("add", "satisfaction_survey") in added and ("add", "contact_person") in added


UPDATE_CONTRACT = """mutation($id: ID!, $i: UpdateContractInput!) {
  updateContract(id: $id, input: $i) { id status } }"""
UPDATE_COMPLAINT = """mutation($id: ID!, $i: UpdateComplaintInput!) {
  updateComplaint(id: $id, input: $i) { status resolution } }"""
UPDATE_OPPORTUNITY = """mutation($id: ID!, $i: UpdateOpportunityInput!) {
  updateOpportunity(id: $id, input: $i) { stage expectedAmount } }"""
REMOVE = """mutation($t: CustomerRecordType!, $id: ID!, $r: String!) {
  removeCustomerRecord(type: $t, id: $id, reason: $r) }"""


async def test_statuses_move_forward_and_records_are_removed_with_a_reason(
    api: Api, alpha: TenantWorld
) -> None:
    cid = await new_customer(alpha, "sales", "状态")
    token = alpha.tokens["sales"]
    contract = (
        await add(
            api,
            alpha,
            "sales",
            "contract",
            cid,
            {"number": f"HT-S-{cid[:8]}", "title": "合作协议", "kind": "COOPERATION"},
        )
    ).ok()
    contract_id = contract["addContract"]["id"]
    active = await api.post(
        "alpha", token, UPDATE_CONTRACT, {"id": contract_id, "i": {"status": "ACTIVE"}}
    )
    assert active.ok()["updateContract"]["status"] == "ACTIVE"
    back = await api.post(
        "alpha", token, UPDATE_CONTRACT, {"id": contract_id, "i": {"status": "DRAFT"}}
    )
    assert back.codes == ["BAD_USER_INPUT"] and back.errors[0]["extensions"]["field"] == "status"

    complaint = (
        await add(
            api,
            alpha,
            "sales",
            "complaint",
            cid,
            {"receivedAt": "2024-07-01T08:00:00Z", "summary": "发票错误"},
        )
    ).ok()["addComplaint"]
    bare = await api.post(
        "alpha", token, UPDATE_COMPLAINT, {"id": complaint["id"], "i": {"status": "RESOLVED"}}
    )
    assert bare.errors[0]["extensions"]["field"] == "resolution"
    resolved = await api.post(
        "alpha",
        token,
        UPDATE_COMPLAINT,
        {"id": complaint["id"], "i": {"status": "RESOLVED", "resolution": "已重开发票"}},
    )
    assert resolved.ok()["updateComplaint"] == {"status": "RESOLVED", "resolution": "已重开发票"}

    opportunity = (await add(api, alpha, "sales", "opportunity", cid, {"title": "扩容"})).ok()
    won = await api.post(
        "alpha",
        token,
        UPDATE_OPPORTUNITY,
        {
            "id": opportunity["addOpportunity"]["id"],
            "i": {"stage": "WON", "expectedAmount": "99.90"},
        },
    )
    assert won.ok()["updateOpportunity"] == {"stage": "WON", "expectedAmount": "99.90"}

    need = (
        await add(
            api, alpha, "sales", "need", cid, {"kind": "PREFERENCE", "description": "只在下午联系"}
        )
    ).ok()["addCustomerNeed"]
    no_reason = await api.post(
        "alpha", token, REMOVE, {"t": "CUSTOMER_NEED", "id": need["id"], "r": "  "}
    )
    assert no_reason.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "reason"}
    removed = await api.post(
        "alpha", token, REMOVE, {"t": "CUSTOMER_NEED", "id": need["id"], "r": "客户撤回"}
    )
    assert removed.ok() == {"removeCustomerRecord": True}
    again = await api.post(
        "alpha", token, REMOVE, {"t": "CUSTOMER_NEED", "id": need["id"], "r": "客户撤回"}
    )
    assert again.codes == ["NOT_FOUND"]
    needs = (
        await api.post(
            "alpha", token, "query($id: ID!) { customer(id: $id) { needs { id } } }", {"id": cid}
        )
    ).ok()
    assert needs["customer"]["needs"] == []

    async def history() -> Any:
        return await raw_connection().fetch(
            "SELECT c.action, c.reason, f.field, f.old_value FROM customer_change c"
            " JOIN customer_change_field f ON f.change_id = c.id"
            " WHERE c.record_id = $1::uuid ORDER BY c.id",
            need["id"],
        )

    rows = await run_in_tenant(alpha.ref, history)
    removal = {r["field"]: r["old_value"] for r in rows if r["action"] == "remove"}
    assert removal["description"] == "只在下午联系"
    assert {r["reason"] for r in rows if r["action"] == "remove"} == {"客户撤回"}


LIST = """query($first: Int!, $search: String) { customers(first: $first, search: $search) {
nodes {
  id overdueAmount
  contactPersons { name } communications(first: 2) { summary staff { email } }
  opportunities { title } purchases { amount } contracts { number }
  paymentRecords { amount } needs { kind } complaints { status }
  satisfactionSurveys { score }
} } }"""


async def test_nested_records_of_a_page_take_one_query_per_type(
    api: Api, alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(4):
        cid = await new_customer(alpha, "sales", f"批量{n}")
        for k in range(3):
            (
                await add(
                    api,
                    alpha,
                    "sales",
                    "communication",
                    cid,
                    {
                        "channel": "EMAIL",
                        "occurredAt": f"2024-0{k + 1}-01T00:00:00Z",
                        "summary": f"邮件{n}-{k}",
                    },
                )
            ).ok()
    statements: list[str] = []
    original = scope.TenantSession.fetch

    async def counting(self: scope.TenantSession, query: str, *args: Any) -> list[Any]:
        statements.append(query)
        return await original(self, query, *args)

    monkeypatch.setattr(scope.TenantSession, "fetch", counting)
    one = (
        await api.post("alpha", alpha.tokens["admin"], LIST, {"first": 1, "search": PREFIX})
    ).ok()
    for_one = len(statements)
    statements.clear()
    page = (
        await api.post("alpha", alpha.tokens["admin"], LIST, {"first": 50, "search": PREFIX})
    ).ok()
    nodes = page["customers"]["nodes"]
    assert len(one["customers"]["nodes"]) == 1 and len(nodes) >= 5
    assert len(statements) == for_one, statements
    # one list query, one per record type, the overdue amounts and the staff members
    assert len(statements) <= 1 + 9 + 1 + 1
    emailed = [n["communications"] for n in nodes if "邮件" in str(n["communications"])]
    assert len(emailed) == 4
    assert all([c["summary"][-1] for c in found] == ["2", "1"] for found in emailed)


async def test_first_is_bounded(api: Api, alpha: TenantWorld) -> None:
    cid = await new_customer(alpha, "sales", "边界")
    for first in (0, 101):
        reply = await api.post(
            "alpha",
            alpha.tokens["sales"],
            "query($id: ID!, $n: Int!) { customer(id: $id) { communications(first: $n) { id } } }",
            {"id": cid, "n": first},
        )
        assert reply.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
