"""Customers through GraphQL: pages, filters, ordering, detail, create, update."""

from __future__ import annotations

import random

import pytest

from dangan.services.identifiers import make_id_number, make_mobile, make_uscc
from tests.support.api import Api
from tests.support.world import CUSTOMERS_PER_TENANT, TENANTS, World, missing_id

FIELDS = "id kind name phone email idNumber uscc address region tier version createdAt"
LIST = """
query($first: Int!, $after: String, $where: [CustomerCondition!], $search: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, where: $where, search: $search, orderBy: $order) {
    totalCount
    edges { cursor node { id name owner { id displayName } department { name } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
DETAIL = f"query($id: ID!) {{ customer(id: $id) {{ {FIELDS} owner {{ email }} }} }}"
CREATE = (
    f"mutation($input: CreateCustomerInput!) {{ createCustomer(input: $input) {{ {FIELDS} }} }}"
)
UPDATE = f"""mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {{
  updateCustomer(id: $id, version: $version, input: $input) {{ {FIELDS} }} }}"""


def _names(reply_data: dict) -> list[str]:
    return [edge["node"]["name"] for edge in reply_data["customers"]["edges"]]


async def test_each_tenant_lists_only_its_own_customers(api: Api, world: World) -> None:
    for slug in TENANTS:
        data = (await api.post(slug, world[slug].tokens["admin"], LIST, {"first": 100})).ok()
        names = _names(data)
        assert data["customers"]["totalCount"] == CUSTOMERS_PER_TENANT
        assert len(names) == CUSTOMERS_PER_TENANT
        assert all(name.startswith(slug) for name in names), names


async def test_pages_walk_every_customer_once(api: Api, world: World) -> None:
    token, seen, after = world["alpha"].tokens["admin"], [], None
    while True:
        page = (await api.post("alpha", token, LIST, {"first": 4, "after": after})).ok()
        seen += [edge["node"]["id"] for edge in page["customers"]["edges"]]
        info = page["customers"]["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert set(str(c["id"]) for c in world["alpha"].customers) <= set(seen)
    assert len(seen) == len(set(seen))


async def test_order_by_name_descending(api: Api, world: World) -> None:
    variables = {"first": 10, "order": {"field": "name", "direction": "DESC"}}
    names = _names((await api.post("beta", world["beta"].tokens["admin"], LIST, variables)).ok())
    assert names == sorted(names, reverse=True)


async def test_filters(api: Api, world: World) -> None:
    token = world["gamma"].tokens["admin"]

    async def names(**variables):
        return _names((await api.post("gamma", token, LIST, {"first": 50, **variables})).ok())

    enterprises = await names(where=[{"field": "kind", "value": "ENTERPRISE"}])
    assert enterprises and all("有限公司" in n for n in enterprises)
    assert await names(where=[{"field": "tier", "value": "KEY"}]) == ["gamma客户0"]
    assert len(await names(search="客户")) >= CUSTOMERS_PER_TENANT // 2
    sales_id = world["gamma"].people["sales"].identity_id
    mine = (
        await api.post(
            "gamma",
            token,
            LIST,
            {"first": 50, "where": [{"field": "ownerId", "value": str(sales_id)}]},
        )
    ).ok()
    assert {e["node"]["owner"]["id"] for e in mine["customers"]["edges"]} == {sales_id}
    both = await names(
        where=[
            {"field": "kind", "value": "INDIVIDUAL"},
            {"field": "tier", "op": "IN", "values": ["KEY", "POTENTIAL"]},
        ]
    )
    assert both == ["gamma客户0"]


async def test_search_treats_like_wildcards_literally(api: Api, world: World) -> None:
    token = world["alpha"].tokens["admin"]
    for term in ("%", "_", "\\"):
        reply = await api.post("alpha", token, LIST, {"first": 5, "search": term})
        assert reply.ok()["customers"]["totalCount"] == 0, term


async def test_nested_owner_and_department_resolve(api: Api, world: World) -> None:
    data = (await api.post("alpha", world["alpha"].tokens["admin"], LIST, {"first": 50})).ok()
    owners = {e["node"]["owner"]["displayName"] for e in data["customers"]["edges"]}
    departments = {e["node"]["department"]["name"] for e in data["customers"]["edges"]}
    assert owners == {"alpha-sales", "alpha-sales2", "alpha-manager"}
    assert departments == {"一组", "二组", "销售部"}


async def test_detail_of_own_tenant_customer(api: Api, world: World) -> None:
    customer = world["beta"].customers[0]
    data = (
        await api.post("beta", world["beta"].tokens["auditor"], DETAIL, {"id": str(customer["id"])})
    ).ok()
    assert data["customer"]["name"] == customer["name"]
    phone = customer["phone"]
    assert data["customer"]["phone"] == phone[:3] + "****" + phone[-4:], (
        "auditors see contact masked"
    )
    assert phone not in str(data)
    assert data["customer"]["owner"]["email"] == "sales@beta.test"


async def test_another_tenants_customer_is_not_found_exactly_like_a_missing_one(
    api: Api, world: World
) -> None:
    token = world["alpha"].tokens["admin"]
    foreign = str(world["beta"].customers[0]["id"])
    replies = [
        await api.post("alpha", token, DETAIL, {"id": ident})
        for ident in (foreign, missing_id(), "not-a-uuid")
    ]
    for reply in replies:
        assert reply.status == 200 and reply.codes == ["NOT_FOUND"]
        assert reply.data is None
    messages = {reply.errors[0]["message"] for reply in replies}
    assert len(messages) == 1, "missing, malformed and foreign ids must be indistinguishable"
    assert world["beta"].customers[0]["name"] not in replies[0].text
    update = await api.post(
        "alpha", token, UPDATE, {"id": foreign, "version": 1, "input": {"name": "x"}}
    )
    assert update.codes == ["NOT_FOUND"]
    assert update.errors[0]["message"] == replies[1].errors[0]["message"]


def _individual(rng: random.Random) -> dict:
    return {
        "kind": "INDIVIDUAL",
        "name": "  王  小明 ",
        "phone": "+86 " + make_mobile(rng),
        "email": "Wang.XM@Example.COM",
        "idNumber": make_id_number(rng, region="11").lower(),
        "region": "北京市",
        "address": "北京市海淀区中关村大街1号",
    }


async def test_create_normalises_and_defaults_owner_to_the_creator(api: Api, world: World) -> None:
    rng = random.Random("create")
    values = _individual(rng)
    created = (
        await api.post("beta", world["beta"].tokens["sales2"], CREATE, {"input": values})
    ).ok()
    customer = created["createCustomer"]
    assert customer["name"] == "王 小明"
    assert customer["phone"] == values["phone"].removeprefix("+86 ")
    assert customer["email"] == "Wang.XM@example.com"
    full_id = values["idNumber"].upper()
    assert customer["idNumber"] == full_id[:6] + "********" + full_id[-4:], (
        "sales see identity masked"
    )
    assert customer["version"] == 1 and customer["tier"] == "ORDINARY"
    detail = (
        await api.post("beta", world["beta"].tokens["admin"], DETAIL, {"id": customer["id"]})
    ).ok()
    assert detail["customer"]["owner"]["email"] == "sales2@beta.test"
    elsewhere = await api.post(
        "gamma", world["gamma"].tokens["admin"], DETAIL, {"id": customer["id"]}
    )
    assert elsewhere.codes == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("phone", "12345678901", "phone"),
        ("phone", "1381234567", "phone"),
        ("idNumber", "110101199003077777", "checksum"),
        ("idNumber", "11010119901307123X", "date"),
        ("email", "not-an-email", "email"),
        ("name", "   ", "name"),
        ("name", "名" * 201, "200"),
        ("region", "火星", "region"),
        ("address", "路" * 501, "500"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    api: Api, world: World, field: str, value: str, fragment: str
) -> None:
    token = world["alpha"].tokens["sales"]
    before = (await api.post("alpha", token, LIST, {"first": 1})).ok()["customers"]["totalCount"]
    values = {**_individual(random.Random(field + value)), field: value}
    reply = await api.post("alpha", token, CREATE, {"input": values})
    assert reply.codes == ["BAD_USER_INPUT"], reply.body
    assert reply.errors[0]["extensions"]["field"] == field
    assert fragment in reply.errors[0]["message"].lower() or fragment in reply.errors[0]["message"]
    after = (await api.post("alpha", token, LIST, {"first": 1})).ok()["customers"]["totalCount"]
    assert after == before


async def test_uscc_checksum_and_kind_rules(api: Api, world: World) -> None:
    token = world["alpha"].tokens["admin"]
    rng = random.Random("uscc")
    good = make_uscc(rng)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    reply = await api.post(
        "alpha", token, CREATE, {"input": {"kind": "ENTERPRISE", "name": "坏公司", "uscc": bad}}
    )
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "uscc"
    wrong_kind = await api.post(
        "alpha", token, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "个人", "uscc": good}}
    )
    assert wrong_kind.errors[0]["extensions"]["field"] == "uscc"
    ok = await api.post(
        "alpha",
        token,
        CREATE,
        {"input": {"kind": "ENTERPRISE", "name": "好公司", "uscc": good.lower()}},
    )
    assert ok.ok()["createCustomer"]["uscc"] == good


async def test_owner_must_be_a_member_of_this_tenant(api: Api, world: World) -> None:
    outsider = world["beta"].people["sales"].identity_id
    reply = await api.post(
        "alpha",
        world["alpha"].tokens["admin"],
        CREATE,
        {"input": {"kind": "INDIVIDUAL", "name": "某人", "ownerId": outsider}},
    )
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "ownerId"


async def test_update_with_optimistic_concurrency(api: Api, world: World) -> None:
    token = world["gamma"].tokens["sales"]
    created = (
        await api.post("gamma", token, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "赵六"}})
    ).ok()
    ident = created["createCustomer"]["id"]
    first = (
        await api.post(
            "gamma",
            token,
            UPDATE,
            {"id": ident, "version": 1, "input": {"region": "广东省", "address": "广州"}},
        )
    ).ok()
    assert first["updateCustomer"]["version"] == 2
    # (A tier change would wait for approval: see tests/graphql/test_changes.py.)
    assert first["updateCustomer"]["region"] == "广东省"
    stale = await api.post(
        "gamma",
        world["gamma"].tokens["manager"],
        UPDATE,
        {"id": ident, "version": 1, "input": {"name": "改名"}},
    )
    assert stale.codes == ["CONFLICT"]
    assert stale.errors[0]["extensions"]["field"] == "version"
    assert "version is now 2" in stale.errors[0]["message"]
    cleared = (
        await api.post(
            "gamma", token, UPDATE, {"id": ident, "version": 2, "input": {"address": None}}
        )
    ).ok()
    assert cleared["updateCustomer"]["address"] is None
    assert cleared["updateCustomer"]["name"] == "赵六"
    empty = await api.post("gamma", token, UPDATE, {"id": ident, "version": 3, "input": {}})
    assert empty.codes == ["BAD_USER_INPUT"]
    null_name = await api.post(
        "gamma", token, UPDATE, {"id": ident, "version": 3, "input": {"name": None}}
    )
    assert (
        null_name.codes == ["BAD_USER_INPUT"]
        and null_name.errors[0]["extensions"]["field"] == "name"
    )


async def test_concurrent_updates_of_one_version_let_exactly_one_win(
    api: Api, world: World
) -> None:
    import asyncio

    token = world["beta"].tokens["admin"]
    ident = (
        await api.post("beta", token, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "钱七"}})
    ).ok()["createCustomer"]["id"]
    replies = await asyncio.gather(
        *[
            api.post(
                "beta", token, UPDATE, {"id": ident, "version": 1, "input": {"address": f"地址{i}"}}
            )
            for i in range(5)
        ]
    )
    assert sorted(r.codes[0] if r.codes else "OK" for r in replies) == ["CONFLICT"] * 4 + ["OK"]


async def test_auditor_reads_but_cannot_write(api: Api, world: World) -> None:
    token = world["alpha"].tokens["auditor"]
    assert (await api.post("alpha", token, LIST, {"first": 1})).ok()
    reply = await api.post("alpha", token, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "x"}})
    assert reply.codes == ["FORBIDDEN"]
    ident = str(world["alpha"].customers[0]["id"])
    update = await api.post(
        "alpha", token, UPDATE, {"id": ident, "version": 1, "input": {"name": "y"}}
    )
    assert update.codes == ["FORBIDDEN"]


async def test_partner_apps_act_within_their_scopes(api: Api, world: World) -> None:
    reader, writer = world["beta"].keys["reader"], world["beta"].keys["writer"]
    assert (await api.post("beta", reader, LIST, {"first": 2})).ok()
    denied = await api.post("beta", reader, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "x"}})
    assert denied.codes == ["FORBIDDEN"]
    # customers:write passes the role gate, but the default policy lets an app edit only
    # customers shared with it, and a new customer is shared with nobody.
    refused = await api.post(
        "beta", writer, CREATE, {"input": {"kind": "INDIVIDUAL", "name": "伙伴客户"}}
    )
    assert refused.codes == ["FORBIDDEN"]
    assert (
        "伙伴客户"
        not in (
            await api.post(
                "beta", world["beta"].tokens["admin"], LIST, {"first": 100, "search": "伙伴"}
            )
        ).text
    )


@pytest.mark.parametrize("first", [0, -1, 1001])
async def test_page_size_is_bounded(api: Api, world: World, first: int) -> None:
    reply = await api.post("alpha", world["alpha"].tokens["admin"], LIST, {"first": first})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "first"


async def test_foreign_or_garbled_cursor_is_bad_input(api: Api, world: World) -> None:
    token = world["alpha"].tokens["admin"]
    page = (await api.post("alpha", token, LIST, {"first": 2})).ok()
    cursor = page["customers"]["pageInfo"]["endCursor"]
    by_name = {"first": 2, "after": cursor, "order": {"field": "name", "direction": "ASC"}}
    for variables in ({"first": 2, "after": "garbage!"}, by_name):
        reply = await api.post("alpha", token, LIST, variables)
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == "after"


async def test_a_number_too_big_for_an_id_is_bad_input_not_an_internal_error(
    api: Api, world: World
) -> None:
    where = [{"field": "ownerId", "value": "110101199003073546"}]
    reply = await api.post(
        "alpha", world["alpha"].tokens["admin"], LIST, {"first": 5, "where": where}
    )
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "where[0].value"
