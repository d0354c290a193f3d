"""Policy versions: propose (validated, tested, measured), activate, roll back, fail closed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dangan.services.customers import create_customer
from dangan.services.identifiers import make_mobile
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import World

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
PROPOSE = "mutation($files: [PolicyFileInput!]!, $c: String!) { proposePolicy(files: $files, comment: $c) { id status report } }"
ACTIVATE = "mutation($v: Int!) { activatePolicy(version: $v) { id status activatedBy } }"
PHONE = "query($id: ID!) { customer(id: $id) { phone } }"
AUDITORS_SEE_CONTACT = '\nfield_access(user: User, "full", _customer: Customer, "contact") if user.has_role("auditor");\n'


def _files(**changes: str) -> list[dict]:
    files = {p.name: p.read_text() for p in POLICY_DIR.glob("*.polar")}
    files |= {f"tests/{p.name}": p.read_text() for p in (POLICY_DIR / "tests").glob("*.yaml")}
    files.update(changes)
    return [{"name": name, "content": text} for name, text in files.items()]


@pytest.fixture(scope="module")
async def polv(api: Api, world: World, settings) -> dict:
    tenant = await create_tenant("polv", "Policy Versions Ltd")
    people = {
        role: await create_user(tenant, f"{role}@polv.test", [role], department="销售部")
        for role in ("admin", "auditor", "sales")
    }
    tokens = {
        r: issue_token(p.identity_id, "polv", secret=settings.secret_key, ttl_seconds=3600).token
        for r, p in people.items()
    }
    phone = make_mobile(random.Random("polv"))
    from tests.support.world import TenantWorld

    admin = TenantWorld(ref=tenant, people=people).caller("admin")
    values = {
        "kind": "INDIVIDUAL",
        "name": "政策测试",
        "phone": phone,
        "owner_id": people["sales"].identity_id,
    }
    cid = await run_in_tenant(tenant, lambda: create_customer(admin, values))
    return {"tokens": tokens, "customer": cid, "phone": phone, "ref": tenant}


async def test_a_broken_policy_is_refused_with_file_and_line(api: Api, polv: dict) -> None:
    text = (
        (POLICY_DIR / "customers.polar")
        .read_text()
        .replace('user.has_role("admin");', 'user.has_role("admin")', 1)
    )
    reply = await api.post(
        "polv",
        polv["tokens"]["admin"],
        PROPOSE,
        {"files": _files(**{"customers.polar": text}), "c": "typo"},
    )
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "files"
    assert "customers.polar" in reply.errors[0]["message"] and "line" in reply.errors[0]["message"]
    unknown = (
        POLICY_DIR / "customers.polar"
    ).read_text() + '\nfield_access(_user: User, "full", _c: Customer, "salary");\n'
    reply = await api.post(
        "polv",
        polv["tokens"]["admin"],
        PROPOSE,
        {"files": _files(**{"customers.polar": unknown}), "c": "typo"},
    )
    assert reply.codes == ["BAD_USER_INPUT"] and "salary" in reply.errors[0]["message"]
    versions = (await api.post("polv", polv["tokens"]["admin"], "{ policyVersions { id } }")).ok()
    assert versions["policyVersions"] == [], "nothing invalid is stored"


async def test_a_policy_failing_its_tests_is_refused(api: Api, polv: dict) -> None:
    text = (POLICY_DIR / "customers.polar").read_text() + AUDITORS_SEE_CONTACT
    reply = await api.post(
        "polv",
        polv["tokens"]["admin"],
        PROPOSE,
        {"files": _files(**{"customers.polar": text}), "c": "auditors see contact"},
    )
    assert reply.codes == ["BAD_USER_INPUT"]
    assert "policy test(s) fail" in reply.errors[0]["message"]
    assert "auditor" in reply.errors[0]["message"]


async def test_only_admins_manage_policies(api: Api, polv: dict) -> None:
    for role in ("auditor", "sales"):
        reply = await api.post("polv", polv["tokens"][role], PROPOSE, {"files": _files(), "c": "x"})
        assert reply.codes == ["FORBIDDEN"]
        assert (
            await api.post("polv", polv["tokens"][role], "{ policyVersions { id } }")
        ).codes == ["FORBIDDEN"]


async def test_propose_measure_activate_obey_and_roll_back(api: Api, polv: dict) -> None:
    admin, auditor = polv["tokens"]["admin"], polv["tokens"]["auditor"]
    phone = polv["phone"]
    variables = {"id": polv["customer"]}
    assert (await api.post("polv", auditor, PHONE, variables)).ok()["customer"]["phone"] != phone

    tests = (
        (POLICY_DIR / "tests" / "default.yaml")
        .read_text()
        .replace(
            "expect: {read: true, name: full, tier: full, phone: masked, email: masked,",
            "expect: {read: true, name: full, tier: full, phone: full, email: full,",
        )
    )
    text = (POLICY_DIR / "customers.polar").read_text() + AUDITORS_SEE_CONTACT
    files = _files(**{"customers.polar": text, "tests/default.yaml": tests})
    proposed = (
        await api.post(
            "polv", admin, PROPOSE, {"files": files, "c": "auditors need contact details"}
        )
    ).ok()["proposePolicy"]
    assert proposed["status"] == "proposed"
    contact = proposed["report"]["roles"]["auditor"]["classes"]["contact"]
    assert contact["full"] == [0, 1] and contact["masked"] == [1, 0]
    assert proposed["report"]["roles"]["sales"]["classes"]["contact"]["full"] == [1, 1]
    assert proposed["report"]["changed"] is True
    assert (await api.post("polv", auditor, PHONE, variables)).ok()["customer"]["phone"] != phone, (
        "not active yet"
    )

    activated = (await api.post("polv", admin, ACTIVATE, {"v": proposed["id"]})).ok()[
        "activatePolicy"
    ]
    assert activated["status"] == "active"
    assert (await api.post("polv", auditor, PHONE, variables)).ok()["customer"]["phone"] == phone
    assert (await api.post("alpha", None, "{ __typename }")).status == 401  # untouched elsewhere

    original = (
        await api.post("polv", admin, PROPOSE, {"files": _files(), "c": "back to the default"})
    ).ok()["proposePolicy"]
    assert original["report"]["roles"]["auditor"]["classes"]["contact"]["full"] == [1, 0]
    (await api.post("polv", admin, ACTIVATE, {"v": original["id"]})).ok()
    assert (await api.post("polv", auditor, PHONE, variables)).ok()["customer"]["phone"] != phone
    listed = (await api.post("polv", admin, "{ policyVersions { id status } }")).ok()[
        "policyVersions"
    ]
    assert [(v["id"], v["status"]) for v in listed] == [
        (original["id"], "active"),
        (proposed["id"], "retired"),
    ]
    again = await api.post("polv", admin, ACTIVATE, {"v": original["id"]})
    assert again.codes == ["CONFLICT"]


async def test_an_active_version_that_no_longer_loads_fails_closed(api: Api, polv: dict) -> None:
    admin, sales = polv["tokens"]["admin"], polv["tokens"]["sales"]
    version = (await api.post("polv", admin, PROPOSE, {"files": _files(), "c": "again"})).ok()[
        "proposePolicy"
    ]["id"]
    (await api.post("polv", admin, ACTIVATE, {"v": version})).ok()

    async def corrupt(files: str) -> None:
        await run_in_tenant(
            polv["ref"],
            lambda: raw_connection().execute(
                "UPDATE policy_version SET files = $1::jsonb WHERE id = $2", files, version
            ),
        )

    original = await run_in_tenant(
        polv["ref"],
        lambda: raw_connection().fetchval(
            "SELECT files::text FROM policy_version WHERE id = $1", version
        ),
    )
    await corrupt('{"customers.polar": "allow(_, _, _) if"}')
    try:
        reply = await api.post("polv", sales, PHONE, {"id": polv["customer"]})
        assert reply.codes == ["INTERNAL"] and reply.data is None
        assert polv["phone"] not in reply.text
    finally:
        await corrupt(original)
    assert (await api.post("polv", sales, PHONE, {"id": polv["customer"]})).ok()["customer"][
        "phone"
    ] == polv["phone"]
