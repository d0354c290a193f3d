"""Who sees and changes which records of a customer, under the default policy: records
go with their customer (list and detail), each class is full, masked or hidden like a
customer field, writes need a visible, editable customer, and every refusal leaves the
database as it was."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from dangan.models.records import RECORD_TYPES
from dangan.services import records
from dangan.services.api_keys import create_app, revoke_app
from dangan.services.customers import create_customer
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import make_mobile
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.graphql.test_records import ADD, add
from tests.support.api import Api, Response
from tests.support.shares import app_share
from tests.support.world import TenantWorld, World, missing_id

PREFIX = "记录授权"  # every customer this module creates; removed at the end
RANGE = "100,000 – 1,000,000"


@dataclass
class Profiles:
    tenant: TenantWorld
    own: str  # owned by sales, with records of every class
    other: str  # owned by sales2
    contract: str  # of own
    other_contact: str  # a contact person of other
    other_contract: str  # a contract of other


async def _customer(tenant: TenantWorld, owner: str, label: str) -> str:
    values = {
        "kind": "INDIVIDUAL",
        "name": f"{PREFIX}-{label}",
        "phone": make_mobile(random.Random(label)),
        "owner_id": tenant.people[owner].identity_id,
    }
    return await create_customer(tenant.caller("admin"), values, allow_possible_duplicate=True)


@pytest.fixture(scope="module")
async def profiles(world: World) -> AsyncIterator[Profiles]:
    tenant = world["alpha"]
    admin = tenant.caller("admin")

    async def build() -> Profiles:
        own, other = (
            await _customer(tenant, "sales", "own"),
            await _customer(tenant, "sales2", "other"),
        )

        async def put(table: str, customer: str, values: dict[str, Any]) -> str:
            return await records.add_record(admin, RECORD_TYPES[table], customer, values)

        await put(
            "communication",
            own,
            {"channel": "VISIT", "summary": "拜访-own", "occurred_at": "2024-05-01T10:00:00+08:00"},
        )
        await put(
            "communication",
            other,
            {
                "channel": "CALL",
                "summary": "拜访-other",
                "occurred_at": "2024-05-01T10:00:00+08:00",
            },
        )
        contract = await put(
            "contract", own, {"number": f"SQ-{own[:8]}", "title": "服务合同", "amount": "500000"}
        )
        due = (date.today() - timedelta(days=5)).isoformat()
        await put("payment_record", own, {"due_on": due, "amount": "250000"})
        await put(
            "purchase",
            own,
            {
                "order_no": "PO-1",
                "product": "软件",
                "quantity": "1",
                "amount": "30000",
                "cost": "20000",
                "purchased_on": due,
            },
        )
        await put("complaint", own, {"received_at": "2024-06-01T00:00:00Z", "summary": "服务慢"})
        other_contact = await put("contact_person", other, {"name": "赵六"})
        other_contract = await put(
            "contract", other, {"number": f"SQ-{other[:8]}", "title": "合同"}
        )
        return Profiles(tenant, own, other, contract, other_contact, other_contract)

    yield await run_in_tenant(tenant.ref, build)

    async def remove() -> None:
        conn = raw_connection()
        await conn.execute(
            "UPDATE customer SET merged_into = NULL WHERE name LIKE $1", f"{PREFIX}%"
        )
        await conn.execute("DELETE FROM customer WHERE name LIKE $1", f"{PREFIX}%")

    await run_in_tenant(tenant.ref, remove)


DETAIL = """query($id: ID!) { customer(id: $id) {
  name overdueAmount
  communications { channel summary }
  contracts { number amount }
  paymentRecords { amount dueOn }
  purchases { amount cost }
  complaints { summary status }
} }"""
LIST = """query($search: String) { customers(first: 50, search: $search) { nodes {
  name communications { summary } paymentRecords { amount } overdueAmount } } }"""


def credential(tenant: TenantWorld, who: str) -> str:
    return tenant.keys.get(who) or tenant.tokens[who]


async def detail(api: Api, p: Profiles, who: str, customer: str) -> Response:
    return await api.post("alpha", credential(p.tenant, who), DETAIL, {"id": customer})


def redacted(reply: Response) -> set[str]:
    return set(reply.body.get("extensions", {}).get("redacted", []))


async def test_sales_see_records_of_their_own_customers_only(api: Api, profiles: Profiles) -> None:
    mine = (await detail(api, profiles, "sales", profiles.own)).ok()["customer"]
    assert [c["summary"] for c in mine["communications"]] == ["拜访-own"]
    assert (await detail(api, profiles, "sales", profiles.other)).codes == ["NOT_FOUND"]
    listed = await api.post("alpha", profiles.tenant.tokens["sales"], LIST, {"search": PREFIX})
    assert [n["name"] for n in listed.ok()["customers"]["nodes"]] == [f"{PREFIX}-own"]
    assert "拜访-other" not in listed.text
    theirs = await api.post("alpha", profiles.tenant.tokens["sales2"], LIST, {"search": PREFIX})
    assert "拜访-own" not in theirs.text and "拜访-other" in theirs.text


async def test_auditor_sees_business_and_financial_records_masked(
    api: Api, profiles: Profiles
) -> None:
    reply = await detail(api, profiles, "auditor", profiles.own)
    customer = reply.ok()["customer"]
    assert customer["communications"] == [{"channel": None, "summary": "[withheld]"}]
    assert customer["complaints"] == [{"summary": "[withheld]", "status": None}]
    assert customer["contracts"] == [{"number": None, "amount": RANGE}]
    assert customer["paymentRecords"] == [{"amount": RANGE, "dueOn": None}]
    assert customer["overdueAmount"] == RANGE
    assert {
        "customer.communications.0.channel",
        "customer.contracts.0.number",
        "customer.paymentRecords.0.dueOn",
    } <= redacted(reply)
    assert "customer.communications.0.summary" not in redacted(reply)


async def test_sales_get_financial_records_hidden(api: Api, profiles: Profiles) -> None:
    reply = await detail(api, profiles, "sales", profiles.own)
    customer = reply.ok()["customer"]
    assert customer["paymentRecords"] is None and customer["overdueAmount"] is None
    assert customer["contracts"] == [{"number": f"SQ-{profiles.own[:8]}", "amount": None}]
    assert customer["purchases"] == [{"amount": "30000.00", "cost": None}]
    assert redacted(reply) == {
        "customer.paymentRecords",
        "customer.overdueAmount",
        "customer.contracts.0.amount",
        "customer.purchases.0.cost",
    }
    listed = await api.post("alpha", profiles.tenant.tokens["sales"], LIST, {"search": PREFIX})
    assert listed.ok()["customers"]["nodes"][0]["paymentRecords"] is None
    assert "customers.nodes.0.paymentRecords" in redacted(listed)
    assert "250000" not in listed.text and "250000" not in reply.text


async def test_partner_app_sees_nothing_of_customers_not_shared_with_it(
    api: Api, profiles: Profiles
) -> None:
    listed = await api.post("alpha", profiles.tenant.keys["reader"], LIST, {"search": PREFIX})
    assert listed.ok()["customers"]["nodes"] == []
    assert (await detail(api, profiles, "reader", profiles.own)).codes == ["NOT_FOUND"]
    reply = await add(
        api,
        profiles.tenant,
        "writer",
        "need",
        profiles.own,
        {"kind": "INTENTION", "description": "合作"},
    )
    assert reply.codes == ["NOT_FOUND"]


UPDATE_CONTRACT = """mutation($id: ID!) {
  updateContract(id: $id, input: {status: "ACTIVE"}) { id } }"""
REMOVE = """mutation($id: ID!) {
  removeCustomerRecord(type: CONTRACT, id: $id, reason: "作废") }"""


def error_of(reply: Response) -> tuple[str, str]:
    return reply.errors[0]["message"], reply.errors[0]["extensions"]["code"]


async def test_ids_of_other_tenants_missing_and_malformed_look_the_same(
    api: Api, world: World, profiles: Profiles
) -> None:
    beta = world["beta"]
    read = await api.post("beta", beta.tokens["admin"], DETAIL, {"id": profiles.own})
    assert read.codes == ["NOT_FOUND"]
    values = {"kind": "INTENTION", "description": "跨租户"}
    answers = [
        error_of(await add(api, beta, "admin", "need", customer, values))
        for customer in (profiles.own, missing_id(), "not-a-uuid")
    ]
    assert answers[0][1] == "NOT_FOUND" and len(set(answers)) == 1
    for mutation in (UPDATE_CONTRACT, REMOVE):
        answers = [
            error_of(await api.post("beta", beta.tokens["admin"], mutation, {"id": record}))
            for record in (profiles.contract, missing_id(), "not-a-uuid")
        ]
        assert answers[0][1] == "NOT_FOUND" and len(set(answers)) == 1


async def footprint(p: Profiles) -> tuple[int, ...]:
    """How many records and changes the two customers have, all tables together."""

    async def count() -> tuple[int, ...]:
        conn = raw_connection()
        counts = [
            await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE customer_id = ANY($1::uuid[])",
                [p.own, p.other],
            )
            for table in [*RECORD_TYPES, "customer_change"]
        ]
        return tuple(counts)

    return await run_in_tenant(p.tenant.ref, count)


async def test_refused_writes_leave_nothing(api: Api, profiles: Profiles) -> None:
    before = await footprint(profiles)
    tenant, need = profiles.tenant, {"kind": "INTENTION", "description": "想要更多"}
    assert (await add(api, tenant, "sales2", "need", profiles.own, need)).codes == ["NOT_FOUND"]
    assert (await add(api, tenant, "auditor", "need", profiles.own, need)).codes == ["FORBIDDEN"]
    payment = {"dueOn": "2024-01-01", "amount": "10"}
    assert (await add(api, tenant, "sales", "paymentRecord", profiles.own, payment)).codes == [
        "FORBIDDEN"
    ]
    priced = await add(
        api,
        tenant,
        "sales",
        "contract",
        profiles.own,
        {"number": "SQ-NEW", "title": "新合同", "amount": "1"},
    )
    assert priced.errors[0]["extensions"] == {"code": "FORBIDDEN", "field": "amount"}
    sales2 = tenant.tokens["sales2"]
    for mutation in (UPDATE_CONTRACT, REMOVE):
        reply = await api.post("alpha", sales2, mutation, {"id": profiles.contract})
        assert reply.codes == ["NOT_FOUND"]
    assert await footprint(profiles) == before


async def test_a_failure_after_the_insert_rolls_the_record_back(
    profiles: Profiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> int:
        raise BadUserInput("the change record refused", field="input")

    monkeypatch.setattr("dangan.services.records.writes.record_change", broken)
    before = await footprint(profiles)
    admin = profiles.tenant.caller("admin")

    async def attempt() -> None:
        with pytest.raises(BadUserInput):
            await records.add_record(
                admin,
                RECORD_TYPES["customer_need"],
                profiles.own,
                {"kind": "INTENTION", "description": "半截"},
            )

    await run_in_tenant(profiles.tenant.ref, attempt)
    assert await footprint(profiles) == before


def _bad_inputs(p: Profiles) -> list[tuple[str, dict[str, Any], str]]:
    moment = "2024-05-01T10:00:00+08:00"
    talk = {"channel": "CALL", "occurredAt": moment, "summary": "电话"}
    purchase = {
        "orderNo": "PO",
        "product": "件",
        "quantity": "1",
        "amount": "1",
        "purchasedOn": "2024-01-01",
    }
    contract = {"number": f"SQ-X-{p.own[:8]}", "title": "合同"}
    complaint = {"receivedAt": moment, "summary": "慢"}
    return [
        ("contactPerson", {"name": " "}, "name"),
        ("contactPerson", {"name": "张三", "phone": "12345"}, "phone"),
        ("contactPerson", {"name": "张三", "email": "zhang@"}, "email"),
        ("communication", {**talk, "channel": "FAX"}, "channel"),
        ("communication", {**talk, "summary": "长" * 4001}, "summary"),
        ("communication", {**talk, "occurredAt": "2024-05-01T10:00:00"}, "occurredAt"),
        ("communication", {**talk, "staffId": 987654}, "staffId"),
        ("communication", {**talk, "contactPersonId": p.other_contact}, "contactPersonId"),
        ("communication", {**talk, "contactPersonId": missing_id()}, "contactPersonId"),
        ("opportunity", {"title": "单", "expectedAmount": "-1"}, "expectedAmount"),
        ("opportunity", {"title": "单", "expectedAmount": "1.234"}, "expectedAmount"),
        ("opportunity", {"title": "单", "stage": "MAYBE"}, "stage"),
        ("purchase", {**purchase, "quantity": "0"}, "quantity"),
        ("purchase", {**purchase, "amount": "1.001"}, "amount"),
        ("contract", {**contract, "number": ""}, "number"),
        ("contract", {**contract, "startsOn": "2024-02-01", "endsOn": "2024-01-01"}, "endsOn"),
        ("contract", {**contract, "status": "SIGNED"}, "status"),
        ("paymentRecord", {"dueOn": "2024-01-01", "amount": "-5"}, "amount"),
        ("paymentRecord", {"dueOn": "1800-01-01", "amount": "5"}, "dueOn"),
        (
            "paymentRecord",
            {"dueOn": "2024-01-01", "amount": "5", "contractId": p.other_contract},
            "contractId",
        ),
        ("need", {"kind": "WISH", "description": "想"}, "kind"),
        ("need", {"kind": "INTENTION", "description": ""}, "description"),
        ("complaint", {**complaint, "severity": "URGENT"}, "severity"),
        ("complaint", {**complaint, "summary": ""}, "summary"),
        ("survey", {"surveyedOn": "2024-01-01", "score": 6}, "score"),
        ("survey", {"surveyedOn": "2024-01-01", "score": 3, "comment": "评" * 2001}, "comment"),
    ]


async def test_bad_input_of_every_add_mutation_names_the_field(
    api: Api, profiles: Profiles
) -> None:
    before = await footprint(profiles)
    cases = _bad_inputs(profiles)
    assert {kind for kind, _, _ in cases} == set(ADD)
    for kind, values, field in cases:
        reply = await add(api, profiles.tenant, "admin", kind, profiles.own, values)
        assert reply.errors and reply.errors[0]["extensions"] == {
            "code": "BAD_USER_INPUT",
            "field": field,
        }, (kind, values, reply.body)
        assert field in reply.errors[0]["message"]
    assert await footprint(profiles) == before


async def test_references_to_another_customer_look_like_missing_ones(
    api: Api, profiles: Profiles
) -> None:
    talk = {"channel": "CALL", "occurredAt": "2024-05-01T10:00:00Z", "summary": "电话"}
    answers = [
        error_of(
            await add(
                api,
                profiles.tenant,
                "admin",
                "communication",
                profiles.own,
                {**talk, "contactPersonId": ref},
            )
        )
        for ref in (profiles.other_contact, missing_id(), "not-a-uuid")
    ]
    assert answers[0][1] == "BAD_USER_INPUT" and len(set(answers)) == 1


async def test_contract_numbers_are_unique_in_the_tenant(api: Api, profiles: Profiles) -> None:
    before = await footprint(profiles)
    reply = await add(
        api,
        profiles.tenant,
        "admin",
        "contract",
        profiles.own,
        {"number": f"SQ-{profiles.other[:8]}", "title": "重复编号"},
    )
    assert reply.errors[0]["extensions"] == {"code": "CONFLICT", "field": "number"}
    assert await footprint(profiles) == before


async def test_the_answer_to_a_write_hides_what_the_writer_may_not_see(
    api: Api, profiles: Profiles
) -> None:
    reply = await add(
        api,
        profiles.tenant,
        "sales2",
        "contract",
        profiles.other,
        {"number": f"SQ-2-{profiles.other[:8]}", "title": "补充协议"},
    )
    assert reply.ok()["addContract"]["amount"] is None
    assert redacted(reply) == {"addContract.amount"}


MERGE = """mutation($s: ID!, $o: [ID!]!) {
  mergeCustomers(survivorId: $s, otherIds: $o, reason: "同一客户重复建档") { id } }"""


async def test_records_cannot_be_added_to_a_merged_customer(api: Api, profiles: Profiles) -> None:
    tenant = profiles.tenant
    survivor, merged = [
        await run_in_tenant(tenant.ref, lambda label=label: _customer(tenant, "sales", label))
        for label in ("merge-survivor", "merge-merged")
    ]
    made = await api.post("alpha", tenant.tokens["admin"], MERGE, {"s": survivor, "o": [merged]})
    made.ok()

    async def needs() -> int:
        return int(
            await raw_connection().fetchval(
                "SELECT count(*) FROM customer_need WHERE customer_id = $1::uuid", merged
            )
        )

    before = await run_in_tenant(tenant.ref, needs)
    need = {"kind": "INTENTION", "description": "合并后"}
    answers = [
        error_of(await add(api, tenant, who, "need", customer, need))
        for who in ("admin", "sales")
        for customer in (merged, missing_id())
    ]
    assert answers[0][1] == "NOT_FOUND" and len(set(answers)) == 1
    assert await run_in_tenant(tenant.ref, needs) == before


async def test_records_are_not_ordered_by_a_column_hidden_from_the_caller(
    api: Api, profiles: Profiles
) -> None:
    """Auditors see payment records (financial, masked) but not their due dates (no
    masked form): their list is in id order, not by due date."""
    tenant = profiles.tenant
    admin = tenant.caller("admin")

    async def build() -> tuple[str, list[str]]:
        cid = await _customer(tenant, "sales", "ordering")
        payment = RECORD_TYPES["payment_record"]
        ids = [
            await records.add_record(admin, payment, cid, {"due_on": "2024-01-01", "amount": "1"})
            for _ in range(2)
        ]
        ids.sort()  # PostgreSQL orders uuids like Python's sort of their text
        # The record with the greater id is due first: id order and due order differ.
        for day, rid in zip(("2024-01-01", "2024-12-31"), reversed(ids), strict=True):
            await raw_connection().execute(
                "UPDATE payment_record SET due_on = $1::text::date WHERE id = $2::uuid", day, rid
            )
        return cid, ids

    cid, ids = await run_in_tenant(tenant.ref, build)
    query = "query($id: ID!) { customer(id: $id) { paymentRecords(first: 1) { id dueOn } } }"
    latest = (await api.post("alpha", tenant.tokens["admin"], query, {"id": cid})).ok()
    assert latest["customer"]["paymentRecords"] == [{"id": ids[0], "dueOn": "2024-12-31"}]
    audited = await api.post("alpha", tenant.tokens["auditor"], query, {"id": cid})
    assert audited.ok()["customer"]["paymentRecords"] == [{"id": ids[1], "dueOn": None}]
    assert "customer.paymentRecords.0.dueOn" in redacted(audited)


UPDATE_COMPLAINT = """mutation($id: ID!, $i: UpdateComplaintInput!) {
  updateComplaint(id: $id, input: $i) { status } }"""


async def test_a_complaint_update_does_not_tell_whether_a_hidden_resolution_is_empty(
    api: Api, profiles: Profiles
) -> None:
    """A partner app shown business but not notes can't resolve a complaint: the answer
    is the same whether its resolution (notes) is written down or not."""
    tenant = profiles.tenant
    admin = tenant.caller("admin")
    name = f"complaints-{uuid.uuid4().hex[:8]}"
    app = await create_app(tenant.ref, name, ["customers:read", "customers:write"])

    async def build() -> tuple[str, list[str]]:
        cid = await _customer(tenant, "sales", "complaints")
        complaint = RECORD_TYPES["complaint"]
        received = "2024-06-01T00:00:00Z"
        ids = [
            await records.add_record(
                admin, complaint, cid, {"received_at": received, "summary": "慢", **extra}
            )
            for extra in ({}, {"resolution": "已处理"})
        ]
        return cid, ids

    cid, ids = await run_in_tenant(tenant.ref, build)
    try:
        async with app_share(tenant, cid, name, ["business"]):
            answers = [
                await api.post(
                    "alpha", app.key, UPDATE_COMPLAINT, {"id": rid, "i": {"status": "RESOLVED"}}
                )
                for rid in ids
            ]
    finally:
        await revoke_app(tenant.ref, name)
    assert answers[0].errors[0]["extensions"] == {"code": "FORBIDDEN", "field": "status"}
    assert [error_of(a) for a in answers] == [error_of(answers[0])] * 2

    async def statuses() -> list[str]:
        rows = await raw_connection().fetch(
            "SELECT status FROM complaint WHERE id = ANY($1::uuid[])", ids
        )
        return [row["status"] for row in rows]

    assert await run_in_tenant(tenant.ref, statuses) == ["OPEN", "OPEN"]
