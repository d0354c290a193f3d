"""Classification dictionaries, regions and cities, and the new customer profile fields."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import Api, Response
from tests.support.cleanup import remove_classification_values, remove_customers
from tests.support.shares import app_share
from tests.support.world import TenantWorld, World

VALUES = """query($d: ClassificationDimension!, $r: Boolean) {
  classificationValues(dimension: $d, includeRetired: $r) { code label builtin retired } }"""
ADD = """mutation($d: ClassificationDimension!, $code: String!, $label: String!) {
  addClassificationValue(dimension: $d, code: $code, label: $label) { code label retired } }"""
RENAME = """mutation($d: ClassificationDimension!, $code: String!, $label: String!) {
  renameClassificationValue(dimension: $d, code: $code, label: $label) { code label } }"""
RETIRE = """mutation($d: ClassificationDimension!, $code: String!) {
  retireClassificationValue(dimension: $d, code: $code) { code retired } }"""
RESTORE = """mutation($d: ClassificationDimension!, $code: String!) {
  restoreClassificationValue(dimension: $d, code: $code) { code retired } }"""
PROFILE = """id category categoryLabel industry industryLabel city region scale potential
  registeredCapital competitionRisk legalRepresentative kind status"""
CREATE = f"""mutation($input: CreateCustomerInput!) {{ createCustomer(input: $input, allowPossibleDuplicate: true) {{ {PROFILE} }} }}"""
UPDATE = f"""mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {{
  updateCustomer(id: $id, version: $version, input: $input) {{ {PROFILE} version }} }}"""
DETAIL = f"query($id: ID!) {{ customer(id: $id) {{ {PROFILE} }} }}"
LIST = "{ customers(first: 500) { nodes { id categoryLabel } } }"
REGIONS = "{ regions { name code cities } }"


@pytest.fixture(scope="module", autouse=True)
async def _leave_the_world_as_it_was(world: World) -> AsyncIterator[None]:
    yield
    await remove_customers(world, "分类-")
    await remove_classification_values(world, ADDED)


async def _post(api: Api, tenant: TenantWorld, who: str, query: str, **variables: Any) -> Response:
    token = tenant.keys[who] if who in ("reader", "writer") else tenant.tokens[who]
    return await api.post(tenant.slug, token, query, variables)


ADDED: list[str] = []


def _code(prefix: str) -> str:
    code = f"{prefix}_{uuid.uuid4().hex[:8].upper()}"
    ADDED.append(code)
    return code


def _field(reply: Response) -> str:
    assert reply.codes == ["BAD_USER_INPUT"], reply.body
    field: str = reply.errors[0]["extensions"]["field"]
    return field


async def test_builtin_kinds_and_tiers(api: Api, world: World) -> None:
    tenant = world["alpha"]
    kinds = (await _post(api, tenant, "sales", VALUES, d="KIND")).ok()["classificationValues"]
    assert [k["code"] for k in kinds] == ["INDIVIDUAL", "ENTERPRISE", "POTENTIAL", "PARTNER"]
    assert all(k["builtin"] for k in kinds)
    refused = await _post(api, tenant, "admin", ADD, d="TIER", code="GOLD", label="金牌")
    assert _field(refused) == "dimension"


async def test_a_value_gained_renamed_retired_and_restored(api: Api, world: World) -> None:
    tenant, other = world["beta"], world["gamma"]
    code = _code("RETAIL")
    added = (await _post(api, tenant, "admin", ADD, d="CATEGORY", code=code, label="零售")).ok()
    assert added["addClassificationValue"] == {"code": code, "label": "零售", "retired": False}
    created = (
        await _post(
            api,
            tenant,
            "sales",
            CREATE,
            input={"kind": "INDIVIDUAL", "name": "分类-分类客户", "category": code},
        )
    ).ok()["createCustomer"]
    assert created["categoryLabel"] == "零售"
    ident = created["id"]
    (await _post(api, tenant, "admin", RENAME, d="CATEGORY", code=code, label="零售业")).ok()
    assert (await _post(api, tenant, "sales", DETAIL, id=ident)).ok()["customer"][
        "categoryLabel"
    ] == "零售业"

    retired = (await _post(api, tenant, "admin", RETIRE, d="CATEGORY", code=code)).ok()
    assert retired["retireClassificationValue"]["retired"] is True
    active = (await _post(api, tenant, "sales", VALUES, d="CATEGORY")).ok()["classificationValues"]
    assert code not in [v["code"] for v in active]
    everything = (await _post(api, tenant, "sales", VALUES, d="CATEGORY", r=True)).ok()
    assert code in [v["code"] for v in everything["classificationValues"]]

    refused = await _post(
        api,
        tenant,
        "sales",
        CREATE,
        input={"kind": "INDIVIDUAL", "name": "分类-新客户", "category": code},
    )
    assert _field(refused) == "category"
    kept = await _post(
        api,
        tenant,
        "sales",
        UPDATE,
        id=ident,
        version=1,
        input={"category": code, "legalRepresentative": "张三"},
    )
    shown = kept.ok()["updateCustomer"]
    assert shown["category"] == code and shown["categoryLabel"] == "零售业", "old records keep it"

    (await _post(api, tenant, "admin", RESTORE, d="CATEGORY", code=code)).ok()
    again = await _post(
        api,
        tenant,
        "sales",
        CREATE,
        input={"kind": "INDIVIDUAL", "name": "分类-又一个", "category": code},
    )
    assert again.ok()["createCustomer"]["category"] == code

    elsewhere = await _post(
        api,
        other,
        "admin",
        CREATE,
        input={"kind": "INDIVIDUAL", "name": "分类-别处", "category": code},
    )
    assert _field(elsewhere) == "category", "dictionaries are per tenant"
    assert code not in elsewhere.text.replace(f"category {code}", "")


async def test_retired_tier_cannot_be_set(api: Api, world: World) -> None:
    tenant = world["gamma"]
    (await _post(api, tenant, "admin", RETIRE, d="TIER", code="KEY")).ok()
    try:
        reply = await _post(
            api,
            tenant,
            "admin",
            CREATE,
            input={"kind": "INDIVIDUAL", "name": "分类-重点?", "tier": "KEY"},
        )
        assert _field(reply) == "tier"
        assert "ORDINARY" not in reply.errors[0]["message"], "lists no other values"
    finally:
        (await _post(api, tenant, "admin", RESTORE, d="TIER", code="KEY")).ok()


async def test_only_admins_edit_dictionaries_and_bad_input(api: Api, world: World) -> None:
    tenant = world["alpha"]
    code = _code("WHOLESALE")
    for who in ("manager", "sales", "auditor", "reader", "writer"):
        reply = await _post(api, tenant, who, ADD, d="INDUSTRY", code=code, label="批发")
        assert reply.codes == ["FORBIDDEN"], who
        retire = await _post(api, tenant, who, RETIRE, d="KIND", code="PARTNER")
        assert retire.codes == ["FORBIDDEN"], who
    assert (
        _field(await _post(api, tenant, "admin", ADD, d="INDUSTRY", code="lower", label="x"))
        == "code"
    )
    assert (
        _field(await _post(api, tenant, "admin", ADD, d="INDUSTRY", code=code, label=" "))
        == "label"
    )
    assert _field(
        await _post(api, tenant, "admin", ADD, d="INDUSTRY", code=code, label="x" * 101)
    ) == ("label")
    (await _post(api, tenant, "admin", ADD, d="INDUSTRY", code=code, label="批发")).ok()
    twice = await _post(api, tenant, "admin", ADD, d="INDUSTRY", code=code, label="批发")
    assert twice.codes == ["CONFLICT"] and twice.errors[0]["extensions"]["field"] == "code"
    for query, variables in (
        (RENAME, {"d": "INDUSTRY", "code": "NO_SUCH", "label": "x"}),
        (RETIRE, {"d": "BUILDING", "code": "NO_SUCH"}),
        (RESTORE, {"d": "CATEGORY", "code": "NO_SUCH"}),
    ):
        reply = await _post(api, tenant, "admin", query, **variables)
        assert reply.codes == ["NOT_FOUND"] and reply.errors[0]["extensions"]["field"] == "code"
    assert (
        _field(await _post(api, tenant, "admin", RENAME, d="KIND", code="PARTNER", label=""))
        == "label"
    )
    unknown = await _post(api, tenant, "sales", VALUES, d="COLOUR")
    assert unknown.codes == ["BAD_USER_INPUT"]


async def test_regions_cities_and_profile_fields(api: Api, world: World) -> None:
    tenant = world["alpha"]
    regions = (await _post(api, tenant, "sales", REGIONS)).ok()["regions"]
    by_name = {r["name"]: r for r in regions}
    assert len(regions) == 34 and by_name["浙江省"]["code"] == "33"
    assert "杭州市" in by_name["浙江省"]["cities"] and len(by_name["浙江省"]["cities"]) == 11
    assert by_name["北京市"]["cities"] == ["北京市"]
    assert "延边朝鲜族自治州" in by_name["吉林省"]["cities"]

    good = {
        "kind": "ENTERPRISE",
        "name": "分类-画像公司",
        "region": "浙江省",
        "city": "杭州市",
        "scale": "MEDIUM",
        "potential": 4,
        "registeredCapital": "5000000",
        "competitionRisk": "HIGH",
        "legalRepresentative": "李四",
    }
    created = (await _post(api, tenant, "sales", CREATE, input=good)).ok()["createCustomer"]
    shown = {k: v for k, v in good.items() if k not in ("name", "registeredCapital")}
    assert {k: created[k] for k in shown} == shown
    assert created["registeredCapital"] == "5000000.00" and created["status"] == "ACTIVE"
    ident = created["id"]
    moved = await _post(
        api, tenant, "sales", UPDATE, id=ident, version=1, input={"region": "江苏省"}
    )
    assert _field(moved) == "city", "the city no longer fits the region"
    both = await _post(
        api,
        tenant,
        "sales",
        UPDATE,
        id=ident,
        version=1,
        input={"region": "江苏省", "city": "苏州市"},
    )
    assert both.ok()["updateCustomer"]["city"] == "苏州市"
    bad = [
        ({**good, "city": "杭州市", "region": "北京市"}, "city"),
        ({**good, "city": "火星市"}, "city"),
        ({**good, "potential": 6}, "potential"),
        ({**good, "potential": 0}, "potential"),
        ({**good, "registeredCapital": "-1"}, "registeredCapital"),
        ({**good, "legalRepresentative": "名" * 101}, "legalRepresentative"),
        ({**good, "category": "not a code"}, "category"),
        ({**good, "industry": "UNKNOWN_INDUSTRY"}, "industry"),
        (
            {
                **good,
                "kind": "POTENTIAL",
                "idNumber": "110101199003073204",
                "uscc": "91350100M000100Y43",
            },
            "uscc",
        ),
    ]
    for values, field in bad:
        assert _field(await _post(api, tenant, "sales", CREATE, input=values)) == field, values
    scale = await _post(api, tenant, "sales", CREATE, input={**good, "scale": "HUGE"})
    assert scale.codes == ["BAD_USER_INPUT"]
    partner = {"kind": "PARTNER", "name": "分类-伙伴", "uscc": "91350100M000100Y43"}
    assert (await _post(api, tenant, "sales", CREATE, input=partner)).ok()["createCustomer"][
        "kind"
    ] == ("PARTNER")


async def test_a_label_is_hidden_where_its_code_is(api: Api, world: World) -> None:
    tenant = world["beta"]
    code = _code("HIDDEN")
    (await _post(api, tenant, "admin", ADD, d="CATEGORY", code=code, label="机密分类")).ok()
    created = await _post(
        api,
        tenant,
        "admin",
        CREATE,
        input={"kind": "INDIVIDUAL", "name": "分类-标签", "category": code},
    )
    ident = created.ok()["createCustomer"]["id"]
    async with app_share(tenant, ident, "reader", ["contact"]):
        reply = await _post(api, tenant, "reader", DETAIL, id=ident)
        customer = reply.ok()["customer"]
        assert customer["category"] is None and customer["categoryLabel"] is None
        assert {"customer.category", "customer.categoryLabel"} <= set(
            reply.body["extensions"]["redacted"]
        )
        assert "机密分类" not in reply.text
    listed = (await _post(api, tenant, "admin", LIST)).ok()["customers"]["nodes"]
    assert {"id": ident, "categoryLabel": "机密分类"} in listed
