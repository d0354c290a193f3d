"""Changes with approval and history (修改须审批并记录), and the customer lifecycle."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.identifiers import make_id_number, make_mobile
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.cleanup import remove_customers
from tests.support.world import TenantWorld, World, missing_id

CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input, allowPossibleDuplicate: true) { id version } }"""
CUSTOMER = "id version phone tier creditRating idNumber status statusChangedAt"
PENDING_FIELDS = (
    "pendingChanges { id status actor { kind name } fields { field oldValue newValue } }"
)
UPDATE = f"""mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!, $reason: String) {{
  updateCustomer(id: $id, version: $version, input: $input, reason: $reason) {{
    {CUSTOMER} {PENDING_FIELDS} }} }}"""
DETAIL = f"query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER} {PENDING_FIELDS} }} }}"
CHANGE = """id status action reason actor { kind name } decidedBy { name } decisionComment
  fields { field oldValue newValue }"""
HISTORY = f"""query($id: ID!, $first: Int, $after: String) {{
  customerHistory(id: $id, first: $first, after: $after) {{
    nodes {{ {CHANGE} }} hasNextPage endCursor }} }}"""
APPROVE = f"mutation($id: ID!, $c: String) {{ approveChange(id: $id, comment: $c) {{ {CHANGE} }} }}"
REJECT = f"mutation($id: ID!, $c: String!) {{ rejectChange(id: $id, comment: $c) {{ {CHANGE} }} }}"
WITHDRAW = f"mutation($id: ID!) {{ withdrawChange(id: $id) {{ {CHANGE} }} }}"
PENDING = f"""query($first: Int, $after: String) {{ pendingChanges(first: $first, after: $after) {{
  nodes {{ {CHANGE} }} hasNextPage endCursor }} }}"""
STATUS = f"""mutation($id: ID!, $status: CustomerStatusInput!, $reason: String!) {{
  setCustomerStatus(id: $id, status: $status, reason: $reason) {{ {CUSTOMER} }} }}"""
LIST = """query($where: [CustomerCondition!]) {
  customers(first: 500, where: $where) { totalCount nodes { id status } } }"""


@pytest.fixture(scope="module", autouse=True)
async def _leave_the_world_as_it_was(world: World) -> AsyncIterator[None]:
    yield
    await remove_customers(world, "变更-")


def _token(tenant: TenantWorld, who: str) -> str:
    return tenant.keys[who] if who in ("reader", "writer") else tenant.tokens[who]


async def _post(api: Api, tenant: TenantWorld, who: str, query: str, **variables: Any) -> Response:
    return await api.post(tenant.slug, _token(tenant, who), query, variables)


async def _customer(api: Api, tenant: TenantWorld, label: str, owner: str = "sales") -> str:
    rng = random.Random(label)
    values = {
        "kind": "INDIVIDUAL",
        "name": f"变更-{label}",
        "phone": make_mobile(rng),
        "idNumber": make_id_number(rng, region="33"),
        "creditRating": "A",
        "ownerId": tenant.people[owner].identity_id,
    }
    reply = await _post(api, tenant, "admin", CREATE, input=values)
    return str(reply.ok()["createCustomer"]["id"])


async def _history(api: Api, tenant: TenantWorld, who: str, ident: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = (await _post(api, tenant, who, HISTORY, id=ident)).ok()[
        "customerHistory"
    ]["nodes"]
    return nodes


def _fields(change: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {f["field"]: (f["oldValue"], f["newValue"]) for f in change["fields"]}


async def test_a_phone_update_applies_at_once_and_is_in_the_history(api: Api, world: World) -> None:
    tenant = world["alpha"]
    ident = await _customer(api, tenant, "phone")
    before = (await _post(api, tenant, "sales", DETAIL, id=ident)).ok()["customer"]
    reply = await _post(
        api,
        tenant,
        "sales",
        UPDATE,
        id=ident,
        version=1,
        input={"phone": "13900001234"},
        reason="客户换号",
    )
    customer = reply.ok()["updateCustomer"]
    assert customer["phone"] == "13900001234" and customer["version"] == 2
    assert customer["pendingChanges"] == []
    timeline = await _history(api, tenant, "sales", ident)
    assert [c["action"] for c in timeline] == ["update", "create"]
    update, create = timeline
    assert update["status"] == "APPLIED" and update["reason"] == "客户换号"
    assert update["actor"] == {"kind": "user", "name": "alpha-sales"}
    assert _fields(update) == {"phone": (before["phone"], "13900001234")}
    assert _fields(create)["name"] == (None, "变更-phone")
    assert create["actor"]["name"] == "alpha-admin"


async def test_unchanged_values_write_nothing(api: Api, world: World) -> None:
    tenant = world["alpha"]
    ident = await _customer(api, tenant, "same")
    phone = (await _post(api, tenant, "sales", DETAIL, id=ident)).ok()["customer"]["phone"]
    reply = await _post(api, tenant, "sales", UPDATE, id=ident, version=1, input={"phone": phone})
    assert reply.ok()["updateCustomer"]["version"] == 1
    assert len(await _history(api, tenant, "sales", ident)) == 1


async def test_tier_waits_for_approval_and_the_manager_approves(api: Api, world: World) -> None:
    tenant = world["beta"]
    ident = await _customer(api, tenant, "tier")
    reply = await _post(
        api,
        tenant,
        "sales",
        UPDATE,
        id=ident,
        version=1,
        input={"tier": "KEY", "phone": "13900004321"},
        reason="年采购额过千万",
    )
    customer = reply.ok()["updateCustomer"]
    assert customer["phone"] == "13900004321" and customer["version"] == 2, "phone applied"
    assert customer["tier"] == "ORDINARY", "the old tier stands until approved"
    [pending] = customer["pendingChanges"]
    assert pending["status"] == "PENDING" and _fields(pending) == {"tier": ("ORDINARY", "KEY")}
    change_id = pending["id"]

    own = await _post(api, tenant, "sales", APPROVE, id=change_id)
    assert own.codes == ["FORBIDDEN"], "the maker never approves"
    for outsider in ("sales2", "reader", "writer"):
        reply = await _post(api, tenant, outsider, APPROVE, id=change_id)
        missing = await _post(api, tenant, outsider, APPROVE, id="999999999")
        assert reply.codes == ["NOT_FOUND"] and reply.body == missing.body, outsider
    auditor = await _post(api, tenant, "auditor", APPROVE, id=change_id)
    assert auditor.codes == ["FORBIDDEN"], "the auditor sees it but may not decide"

    listed = (await _post(api, tenant, "manager", PENDING, first=200)).ok()["pendingChanges"]
    assert change_id in [c["id"] for c in listed["nodes"]]
    for who in ("sales", "sales2", "auditor", "reader"):
        nodes = (await _post(api, tenant, who, PENDING)).ok()["pendingChanges"]["nodes"]
        assert change_id not in [c["id"] for c in nodes], who

    approved = (await _post(api, tenant, "manager", APPROVE, id=change_id, c="同意")).ok()
    decided = approved["approveChange"]
    assert decided["status"] == "APPROVED" and decided["decidedBy"]["name"] == "beta-manager"
    assert decided["decisionComment"] == "同意"
    after = (await _post(api, tenant, "sales", DETAIL, id=ident)).ok()["customer"]
    assert after["tier"] == "KEY" and after["version"] == 3 and after["pendingChanges"] == []
    again = await _post(api, tenant, "admin", APPROVE, id=change_id)
    assert again.codes == ["CONFLICT"]
    timeline = await _history(api, tenant, "admin", ident)
    tier_change = next(c for c in timeline if "tier" in _fields(c))
    assert tier_change["status"] == "APPROVED" and tier_change["actor"]["name"] == "beta-sales"
    assert tier_change["decidedBy"]["name"] == "beta-manager"


async def test_financial_and_identity_changes_wait_even_for_admins(api: Api, world: World) -> None:
    tenant = world["gamma"]
    ident = await _customer(api, tenant, "financial")
    new_id = make_id_number(random.Random("new id"), region="11")
    reply = await _post(
        api,
        tenant,
        "admin",
        UPDATE,
        id=ident,
        version=1,
        input={"creditRating": "AAA", "idNumber": new_id},
    )
    customer = reply.ok()["updateCustomer"]
    assert customer["creditRating"] == "A" and customer["version"] == 1
    assert customer["idNumber"] != new_id
    [pending] = customer["pendingChanges"]
    own = await _post(api, tenant, "admin", APPROVE, id=pending["id"])
    assert own.codes == ["FORBIDDEN"], "not even an admin approves their own change"
    decided = (await _post(api, tenant, "manager", APPROVE, id=pending["id"])).ok()
    shown = _fields(decided["approveChange"])
    assert shown["idNumber"][1] == new_id[:6] + "********" + new_id[-4:], "manager: masked"
    assert shown["creditRating"] == ("A", "AAA")

    async def stored() -> Any:
        return await raw_connection().fetchrow(
            "SELECT credit_rating, id_number, version FROM customer WHERE id = $1::uuid", ident
        )

    row = await run_in_tenant(tenant.ref, stored)
    assert (row["credit_rating"], row["id_number"], row["version"]) == ("AAA", new_id, 2)


async def test_a_customer_of_another_department_is_not_the_managers_to_approve(
    api: Api, world: World
) -> None:
    tenant = world["alpha"]
    ident = await _customer(api, tenant, "audit dept", owner="auditor")
    reply = await _post(api, tenant, "admin", UPDATE, id=ident, version=1, input={"tier": "KEY"})
    [pending] = reply.ok()["updateCustomer"]["pendingChanges"]
    refused = await _post(api, tenant, "manager", APPROVE, id=pending["id"])
    assert refused.codes == ["NOT_FOUND"]
    nodes = (await _post(api, tenant, "manager", PENDING)).ok()["pendingChanges"]["nodes"]
    assert pending["id"] not in [c["id"] for c in nodes]
    other = await _post(api, tenant, "manager", WITHDRAW, id=pending["id"])
    assert other.codes == ["NOT_FOUND"]
    not_maker = await _post(api, tenant, "auditor", WITHDRAW, id=pending["id"])
    assert not_maker.codes == ["FORBIDDEN"], "only the maker withdraws"
    withdrawn = (await _post(api, tenant, "admin", WITHDRAW, id=pending["id"])).ok()
    assert withdrawn["withdrawChange"]["status"] == "WITHDRAWN"
    late = await _post(api, tenant, "admin", REJECT, id=pending["id"], c="太晚了")
    assert late.codes == ["CONFLICT"]


async def test_approving_a_change_whose_field_moved_since_is_a_conflict(
    api: Api, world: World
) -> None:
    tenant = world["beta"]
    ident = await _customer(api, tenant, "conflict")
    ids = []
    for tier in ("KEY", "POTENTIAL"):
        reply = await _post(api, tenant, "sales", UPDATE, id=ident, version=1, input={"tier": tier})
        ids.append(reply.ok()["updateCustomer"]["pendingChanges"][0]["id"])  # newest first
    assert len(set(ids)) == 2
    (await _post(api, tenant, "manager", APPROVE, id=ids[0])).ok()
    stale = await _post(api, tenant, "manager", APPROVE, id=ids[1])
    assert stale.codes == ["CONFLICT"]
    assert stale.errors[0]["extensions"]["changedFields"] == ["tier"]
    no_reason = await _post(api, tenant, "manager", REJECT, id=ids[1], c="  ")
    assert no_reason.codes == ["BAD_USER_INPUT"]
    assert no_reason.errors[0]["extensions"]["field"] == "comment"
    rejected = (await _post(api, tenant, "manager", REJECT, id=ids[1], c="已改为重点")).ok()
    assert rejected["rejectChange"]["status"] == "REJECTED"
    detail = (await _post(api, tenant, "sales", DETAIL, id=ident)).ok()["customer"]
    assert detail["tier"] == "KEY" and detail["pendingChanges"] == []


async def test_history_pages_newest_first(api: Api, world: World) -> None:
    tenant = world["gamma"]
    ident = await _customer(api, tenant, "pages")
    for version, phone in enumerate(("13900000001", "13900000002", "13900000003"), start=1):
        reply = await _post(
            api, tenant, "sales", UPDATE, id=ident, version=version, input={"phone": phone}
        )
        reply.ok()
    seen, after = [], None
    while True:
        page = (await _post(api, tenant, "sales", HISTORY, id=ident, first=2, after=after)).ok()
        seen += page["customerHistory"]["nodes"]
        if not page["customerHistory"]["hasNextPage"]:
            break
        after = page["customerHistory"]["endCursor"]
    assert [c["action"] for c in seen] == ["update", "update", "update", "create"]
    assert [_fields(c)["phone"][1] for c in seen[:3]] == [
        "13900000003",
        "13900000002",
        "13900000001",
    ]


async def test_status_changes_are_recorded_and_filterable(api: Api, world: World) -> None:
    tenant = world["alpha"]
    ident = await _customer(api, tenant, "status")
    reply = await _post(api, tenant, "sales", STATUS, id=ident, status="INVALID", reason="已注销")
    customer = reply.ok()["setCustomerStatus"]
    assert customer["status"] == "INVALID" and customer["statusChangedAt"] is not None
    assert customer["version"] == 2
    [change, _] = await _history(api, tenant, "manager", ident)
    assert change["action"] == "status" and change["reason"] == "已注销"
    assert _fields(change) == {"status": ("ACTIVE", "INVALID")}
    where = [{"field": "status", "value": "INVALID"}]
    listed = (await _post(api, tenant, "admin", LIST, where=where)).ok()["customers"]["nodes"]
    assert ident in [c["id"] for c in listed] and {c["status"] for c in listed} == {"INVALID"}
    same = await _post(api, tenant, "sales", STATUS, id=ident, status="INVALID", reason="再次")
    assert same.codes == ["BAD_USER_INPUT"] and same.errors[0]["extensions"]["field"] == "status"
    empty = await _post(api, tenant, "sales", STATUS, id=ident, status="ACTIVE", reason=" ")
    assert empty.codes == ["BAD_USER_INPUT"] and empty.errors[0]["extensions"]["field"] == "reason"
    merged = await _post(api, tenant, "admin", STATUS, id=ident, status="MERGED", reason="x")
    assert merged.codes == ["BAD_USER_INPUT"], "MERGED is not settable"
    assert (
        await _post(api, tenant, "auditor", STATUS, id=ident, status="ACTIVE", reason="x")
    ).codes == ["FORBIDDEN"]
    hidden = await _post(api, tenant, "sales2", STATUS, id=ident, status="ACTIVE", reason="x")
    missing = await _post(
        api, tenant, "sales2", STATUS, id=missing_id(), status="ACTIVE", reason="x"
    )
    assert hidden.codes == ["NOT_FOUND"] and hidden.body == missing.body


async def test_a_merged_customer_is_gone_from_lists_and_answers_not_found(
    api: Api, world: World
) -> None:
    tenant = world["beta"]
    ident = await _customer(api, tenant, "merged")

    async def merge() -> None:
        await raw_connection().execute(
            "UPDATE customer SET status = 'MERGED' WHERE id = $1::uuid", ident
        )

    await run_in_tenant(tenant.ref, merge)
    listed = (await _post(api, tenant, "admin", LIST)).ok()["customers"]["nodes"]
    assert ident not in [c["id"] for c in listed]
    by_status = await _post(
        api, tenant, "admin", LIST, where=[{"field": "status", "value": "MERGED"}]
    )
    assert by_status.ok()["customers"]["totalCount"] == 0
    for query, variables in (
        (DETAIL, {"id": ident}),
        (HISTORY, {"id": ident}),
        (UPDATE, {"id": ident, "version": 1, "input": {"phone": "13900009999"}}),
        (STATUS, {"id": ident, "status": "ACTIVE", "reason": "恢复"}),
    ):
        reply = await _post(api, tenant, "admin", query, **variables)
        assert reply.codes == ["NOT_FOUND"], query


async def test_another_tenants_changes_and_customers_are_not_found(api: Api, world: World) -> None:
    beta, alpha = world["beta"], world["alpha"]

    async def last_change() -> int:
        return int(
            await raw_connection().fetchval("SELECT coalesce(max(id), 0) FROM customer_change")
        )

    # Change ids are numbered per tenant: move beta's numbering past alpha's, so that the
    # id of beta's change is no change of alpha's (whose answer would be about its own).
    beyond = await run_in_tenant(alpha.ref, last_change) + 1000

    async def renumber() -> None:
        await raw_connection().execute("SELECT setval('customer_change_id_seq', $1)", beyond)

    await run_in_tenant(beta.ref, renumber)
    ident = await _customer(api, beta, "foreign")
    reply = await _post(api, beta, "sales", UPDATE, id=ident, version=1, input={"tier": "KEY"})
    [pending] = reply.ok()["updateCustomer"]["pendingChanges"]
    for query, variables in (
        (APPROVE, {"id": pending["id"]}),
        (REJECT, {"id": pending["id"], "c": "不"}),
        (WITHDRAW, {"id": pending["id"]}),
        (HISTORY, {"id": ident}),
        (STATUS, {"id": ident, "status": "EXPIRED", "reason": "x"}),
    ):
        for who in ("admin", "manager"):
            foreign = await _post(api, alpha, who, query, **variables)
            assert foreign.codes == ["NOT_FOUND"], (query, who)
            assert "变更-foreign" not in foreign.text
    malformed = [
        await _post(api, alpha, "admin", APPROVE, id=raw) for raw in ("abc", "-1", "1" * 30)
    ]
    assert {r.codes[0] for r in malformed} == {"NOT_FOUND"}
    assert len({r.errors[0]["message"] for r in malformed}) == 1
    (await _post(api, beta, "sales", WITHDRAW, id=pending["id"])).ok()


async def test_bad_input_names_the_field(api: Api, world: World) -> None:
    tenant = world["gamma"]
    ident = await _customer(api, tenant, "bad input")
    cases = [
        (
            UPDATE,
            {"id": ident, "version": 1, "input": {"phone": "1"}, "reason": "r" * 501},
            "reason",
        ),
        (HISTORY, {"id": ident, "first": 0}, "first"),
        (HISTORY, {"id": ident, "first": 201}, "first"),
        (HISTORY, {"id": ident, "after": "garbage!"}, "after"),
        (PENDING, {"first": 0}, "first"),
        (PENDING, {"after": "Zm9v"}, "after"),
        (STATUS, {"id": ident, "status": "EXPIRED", "reason": "r" * 501}, "reason"),
    ]
    for query, variables, field in cases:
        reply = await _post(api, tenant, "manager", query, **variables)
        assert reply.codes == ["BAD_USER_INPUT"], (variables, reply.body)
        assert reply.errors[0]["extensions"]["field"] == field, variables
    reply = await _post(api, tenant, "sales", UPDATE, id=ident, version=1, input={"tier": "KEY"})
    [pending] = reply.ok()["updateCustomer"]["pendingChanges"]
    long = await _post(api, tenant, "manager", APPROVE, id=pending["id"], c="c" * 1001)
    assert long.codes == ["BAD_USER_INPUT"] and long.errors[0]["extensions"]["field"] == "comment"
    assert (await _post(api, tenant, "manager", REJECT, id=pending["id"], c="")).errors[0][
        "extensions"
    ]["field"] == "comment"
    assert (await _post(api, tenant, "sales", WITHDRAW, id="nope")).codes == ["NOT_FOUND"]
    (await _post(api, tenant, "sales", WITHDRAW, id=pending["id"])).ok()


async def test_an_approved_identifier_must_still_be_free(api: Api, world: World) -> None:
    """A pending ID number reserves nothing: if another customer took it meanwhile, the
    approval is refused rather than giving two customers one ID number."""
    tenant = world["gamma"]
    ident = await _customer(api, tenant, "待批身份证")
    wanted = make_id_number(random.Random("待批身份证-新"), region="11")
    reply = await _post(
        api, tenant, "sales", UPDATE, id=ident, version=1, input={"idNumber": wanted}
    )
    [pending] = reply.ok()["updateCustomer"]["pendingChanges"]
    other = {"kind": "INDIVIDUAL", "name": "变更-先占身份证", "idNumber": wanted}
    (await _post(api, tenant, "admin", CREATE, input=other)).ok()
    approval = await _post(api, tenant, "manager", APPROVE, id=pending["id"])
    # (The manager sees ID numbers masked: the refusal doesn't say whose it is.)
    assert approval.codes == ["CONFLICT"] and wanted not in approval.text

    async def holders() -> int:
        return int(
            await raw_connection().fetchval(
                "SELECT count(*) FROM customer WHERE id_number = $1", wanted
            )
        )

    assert await run_in_tenant(tenant.ref, holders) == 1
