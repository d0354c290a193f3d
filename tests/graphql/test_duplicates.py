"""No customer entered twice: createCustomer and updateCustomer refuse duplicates, and
tell the caller only about the candidates they may see; administrators get a worklist
of likely duplicates (duplicateCandidates)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.identifiers import make_id_number, make_mobile
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.world import TENANTS, TenantWorld, World

PREFIX = "查重测试"  # every customer these tests create is named like this
PURPOSE = "duplicate-tests"
CREATE = """
mutation($input: CreateCustomerInput!, $allow: Boolean = false) {
  createCustomer(input: $input, allowPossibleDuplicate: $allow) { id name }
}"""
UPDATE = """
mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, version: $version, input: $input) { id version }
}"""
DETAIL = "query($id: ID!) { customer(id: $id) { id name } }"
CANDIDATES = """
query($first: Int, $after: String) {
  duplicateCandidates(first: $first, after: $after) {
    nodes { matchedOn certain similarity customers { id name phone } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _sql(tenant: TenantWorld, query: str, *args: Any) -> Any:
    async def work() -> Any:
        return await raw_connection().fetch(query, *args)

    return await run_in_tenant(tenant.ref, work)


@pytest.fixture
async def cleanup(world: World) -> AsyncIterator[None]:
    """Leave the world as it was: remove this module's customers and share requests."""
    yield
    for slug in TENANTS:
        await _sql(world[slug], "DELETE FROM share_request WHERE purpose = $1", PURPOSE)
        await _sql(world[slug], "DELETE FROM customer WHERE name LIKE $1", f"{PREFIX}%")


def person(label: str, seed: str | None = None) -> dict[str, Any]:
    rng = random.Random(seed or label)
    return {
        "kind": "INDIVIDUAL",
        "name": f"{PREFIX}{label}",
        "phone": make_mobile(rng),
        "idNumber": make_id_number(rng, region="33"),
    }


async def create(
    api: Api, tenant: TenantWorld, who: str, values: dict[str, Any], allow: bool = False
) -> Response:
    return await api.post(
        tenant.slug, tenant.tokens[who], CREATE, {"input": values, "allow": allow}
    )


def conflict(reply: Response) -> dict[str, Any]:
    assert reply.codes == ["CONFLICT"], reply.body
    extensions: dict[str, Any] = reply.errors[0]["extensions"]
    return extensions


async def test_creating_the_same_customer_twice_names_the_one_you_can_see(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    values = person("李白")
    first = (await create(api, alpha, "sales", values)).ok()["createCustomer"]
    again = conflict(await create(api, alpha, "sales", values))
    seen = (await api.post("alpha", alpha.tokens["sales"], DETAIL, {"id": first["id"]})).ok()
    assert again["duplicates"] == [
        {
            "id": first["id"],
            "name": seen["customer"]["name"],  # exactly as the caller sees it
            # Sales see ID numbers only masked, with no right to match them exactly: the
            # refusal must not confirm one (a guessed number would be confirmed).
            "matchedOn": ["phone", "name"],
            "similarity": 1.0,
        }
    ]
    assert again["field"] == "phone" and again["overridable"] is False
    assert "hiddenDuplicate" not in again and "askAdministrators" not in again
    rows = await _sql(alpha, "SELECT id FROM customer WHERE name = $1", values["name"])
    assert len(rows) == 1


async def test_a_certain_duplicate_cannot_be_overridden_a_possible_one_can(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    values = person("杜甫")
    (await create(api, alpha, "admin", values)).ok()
    same_id = {**person("完全不同的人"), "idNumber": values["idNumber"]}
    refused = conflict(await create(api, alpha, "admin", same_id, allow=True))
    assert refused["overridable"] is False and refused["duplicates"][0]["matchedOn"] == ["idNumber"]

    same_phone = {**person("白居易"), "phone": values["phone"]}
    possible = conflict(await create(api, alpha, "admin", same_phone))
    assert possible["overridable"] is True and possible["field"] == "phone"
    assert possible["duplicates"][0]["matchedOn"] == ["phone"]
    assert (
        "allowPossibleDuplicate"
        in (await create(api, alpha, "admin", same_phone)).errors[0]["message"]
    )
    created = (await create(api, alpha, "admin", same_phone, allow=True)).ok()
    assert created["createCustomer"]["name"] == same_phone["name"]

    similar = person("杜甫 ", seed="another person")  # the same name, other identifiers
    assert conflict(await create(api, alpha, "admin", similar))["duplicates"][0]["matchedOn"] == [
        "name"
    ]


async def test_a_duplicate_you_may_not_see_is_only_said_to_exist(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    values = person("王维")
    theirs = (await create(api, alpha, "sales", values)).ok()["createCustomer"]["id"]
    reply = await create(api, alpha, "sales2", values, allow=True)
    extensions = conflict(reply)
    assert extensions["duplicates"] == [] and extensions["hiddenDuplicate"] is True
    assert extensions["askAdministrators"] == ["alpha-admin"]
    assert extensions["field"] == "input"
    assert theirs not in reply.text and values["name"] not in reply.text
    assert "alpha-sales" not in reply.text  # nor whose it is
    rows = await _sql(alpha, "SELECT count(*) AS n FROM customer WHERE name = $1", values["name"])
    assert rows[0]["n"] == 1


async def test_a_matching_field_hidden_from_you_is_not_described(
    api: Api, world: World, cleanup: None
) -> None:
    """sales2 sees sales's customer through a share of its basic facts only: the ID
    number they typed matches a field they may not see, so the candidate is not named."""
    alpha = world["alpha"]
    values = person("孟浩然")
    theirs = (await create(api, alpha, "sales", values)).ok()["createCustomer"]["id"]
    await _sql(
        alpha,
        "WITH r AS (INSERT INTO share_request (grantee_user_id, classes, level, purpose,"
        " valid_until, status, requested_by) VALUES ($1, '{basic}', 'full', $2,"
        " now() + interval '1 day', 'approved', $1) RETURNING id)"
        " INSERT INTO share_request_customer SELECT r.id, $3::uuid FROM r",
        alpha.people["sales2"].identity_id,
        PURPOSE,
        theirs,
    )
    shown = await api.post("alpha", alpha.tokens["sales2"], DETAIL, {"id": theirs})
    assert shown.ok()["customer"]["name"] == values["name"]  # the share works
    other_name = {**values, "name": f"{PREFIX}另一个名字", "phone": None}
    reply = await create(api, alpha, "sales2", other_name)
    extensions = conflict(reply)
    assert extensions["duplicates"] == [] and extensions["hiddenDuplicate"] is True
    assert theirs not in reply.text


async def test_other_tenants_are_never_matched(api: Api, world: World, cleanup: None) -> None:
    known = world["alpha"].customers[0]
    values = {
        "kind": "INDIVIDUAL",
        "name": known["name"].replace("alpha", f"{PREFIX}beta"),
        "phone": known["phone"],
        "idNumber": known["id_number"],
    }
    (await create(api, world["beta"], "admin", values)).ok()


async def test_an_update_may_not_take_another_customers_id_number(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    first = (await create(api, alpha, "admin", person("苏轼"))).ok()["createCustomer"]["id"]
    second_values = person("辛弃疾")
    second = (await create(api, alpha, "admin", second_values)).ok()["createCustomer"]["id"]
    rows = await _sql(alpha, "SELECT id_number FROM customer WHERE id = $1::uuid", first)
    taken = {"idNumber": rows[0]["id_number"]}
    reply = await api.post(
        "alpha", alpha.tokens["admin"], UPDATE, {"id": second, "version": 1, "input": taken}
    )
    extensions = conflict(reply)
    assert extensions["field"] == "idNumber" and extensions["duplicates"][0]["id"] == first
    keep = {"idNumber": second_values["idNumber"], "phone": second_values["phone"]}
    same = await api.post(
        "alpha", alpha.tokens["admin"], UPDATE, {"id": second, "version": 1, "input": keep}
    )
    # Its own values are no conflict (and, being unchanged, no change either).
    assert same.ok()["updateCustomer"]["version"] == 1


async def test_administrators_get_groups_of_likely_duplicates(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    values = person("陆游")
    one = (await create(api, alpha, "admin", values)).ok()["createCustomer"]["id"]
    twin = {**person("陆游", seed="twin"), "phone": values["phone"]}
    two = (await create(api, alpha, "admin", twin, allow=True)).ok()["createCustomer"]["id"]
    await _sql(
        world["beta"],
        "INSERT INTO customer (kind, name, phone) VALUES ('INDIVIDUAL', $1, $2)",
        f"{PREFIX}陆游",
        values["phone"],
    )
    groups: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"first": 3, "after": after}
        page = (await api.post("alpha", alpha.tokens["admin"], CANDIDATES, variables)).ok()
        groups += page["duplicateCandidates"]["nodes"]
        if not page["duplicateCandidates"]["pageInfo"]["hasNextPage"]:
            break
        after = page["duplicateCandidates"]["pageInfo"]["endCursor"]
    by_phone = [g for g in groups if g["matchedOn"] == "phone" and values["phone"] in str(g)]
    assert [sorted(c["id"] for c in g["customers"]) for g in by_phone] == [sorted([one, two])]
    assert by_phone[0]["certain"] is False
    by_name = [g for g in groups if {c["id"] for c in g["customers"]} == {one, two}]
    assert {g["matchedOn"] for g in by_name} == {"phone", "name"}
    ranks = ["idNumber", "uscc", "phone", "name"]
    assert [ranks.index(g["matchedOn"]) for g in groups] == sorted(
        ranks.index(g["matchedOn"]) for g in groups
    )
    alpha_ids = await _sql(alpha, "SELECT id::text AS id FROM customer")
    known = {row["id"] for row in alpha_ids}
    assert all(c["id"] in known for g in groups for c in g["customers"]), "only alpha's"


@pytest.mark.parametrize("who", ["sales", "manager", "auditor"])
async def test_only_administrators_see_the_duplicate_worklist(
    api: Api, world: World, who: str
) -> None:
    reply = await api.post("alpha", world["alpha"].tokens[who], CANDIDATES, {"first": 5})
    assert reply.codes == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("variables", "field"), [({"first": 0}, "first"), ({"first": 5, "after": "nonsense"}, "after")]
)
async def test_bad_worklist_input_is_named(
    api: Api, world: World, variables: dict[str, Any], field: str
) -> None:
    reply = await api.post("alpha", world["alpha"].tokens["admin"], CANDIDATES, variables)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field


async def test_similar_chinese_names_are_found_by_their_characters(
    api: Api, world: World, cleanup: None
) -> None:
    """pg_trgm must see Chinese characters as letters (a UTF-8 LC_CTYPE): under "C" a
    Chinese name has no trigrams and look-alikes are never found."""
    alpha = world["alpha"]
    trigrams = await _sql(alpha, "SELECT dangan_ext.show_trgm('杭州西湖科技') AS t")
    assert len(trigrams[0]["t"]) >= 6
    company = {"kind": "ENTERPRISE", "name": f"{PREFIX}杭州西湖科技有限公司"}
    one = (await create(api, alpha, "admin", company)).ok()["createCustomer"]["id"]
    similar = {"kind": "ENTERPRISE", "name": f"{PREFIX}杭州市西湖科技"}
    found = conflict(await create(api, alpha, "admin", similar))["duplicates"]
    assert [(d["id"], d["matchedOn"]) for d in found] == [(one, ["name"])]
    unlike = {"kind": "ENTERPRISE", "name": "上海浦东软件"}
    other = (await create(api, alpha, "admin", unlike)).ok()["createCustomer"]["id"]
    await _sql(alpha, "DELETE FROM customer WHERE id = $1::uuid", other)


async def test_a_refusal_never_confirms_an_identifier_seen_only_masked(
    api: Api, world: World, cleanup: None
) -> None:
    """The manager sees ID numbers masked (no "match" right): guessing one in full must
    not be confirmed by naming the customer it belongs to."""
    alpha = world["alpha"]
    values = person("王维")
    known = (await create(api, alpha, "admin", values)).ok()["createCustomer"]["id"]
    guess = {**person("另一个人"), "idNumber": values["idNumber"]}
    reply = await create(api, alpha, "manager", guess)
    extensions = conflict(reply)
    assert known not in reply.text and values["idNumber"] not in reply.text
    assert extensions.get("duplicates", []) == [] and extensions["hiddenDuplicate"] is True
    admin = conflict(await create(api, alpha, "admin", guess))
    assert admin["duplicates"][0]["id"] == known and admin["duplicates"][0]["matchedOn"] == [
        "idNumber"
    ]
