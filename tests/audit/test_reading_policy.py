"""Who reads the audit trail is the tenant's policy (``can_read_audit``), not code: a
version that grants managers takes effect at once, and rolling back takes it away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from tests.audit.reading import EVENTS
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import World

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
SLUG = "auditpol"
PROPOSE = """mutation($files: [PolicyFileInput!]!, $c: String!) {
  proposePolicy(files: $files, comment: $c) { id report }
}"""
ACTIVATE = "mutation($v: Int!) { activatePolicy(version: $v) { id status } }"
MANAGERS_READ = '\ncan_read_audit(user: User) if user.has_role("manager");\n'


def _files(*, without: tuple[str, ...] = (), **changes: str) -> list[dict[str, str]]:
    files = {p.name: p.read_text() for p in POLICY_DIR.glob("*.polar")}
    files |= {f"tests/{p.name}": p.read_text() for p in (POLICY_DIR / "tests").glob("*.yaml")}
    files.update(changes)
    return [{"name": n, "content": t} for n, t in files.items() if n not in without]


@pytest.fixture(scope="module")
async def tokens(settings: Settings, world: World) -> AsyncIterator[dict[str, str]]:
    tenant = await create_tenant(SLUG, "Audit Policy Ltd")
    made = {}
    for role in ("admin", "manager", "auditor"):
        person = await create_user(tenant, f"{role}@{SLUG}.test", [role], department="销售部")
        made[role] = issue_token(
            person.identity_id, SLUG, secret=settings.secret_key, ttl_seconds=3600
        ).token
    yield made
    await drop_tenant(SLUG)


async def _reads(api: Api, token: str) -> list[str]:
    reply = await api.post(SLUG, token, EVENTS, {"first": 1})
    return reply.codes or ["OK"]


async def _activate(api: Api, admin: str, files: list[dict[str, str]], comment: str) -> dict:
    proposed = (await api.post(SLUG, admin, PROPOSE, {"files": files, "c": comment})).ok()
    version = proposed["proposePolicy"]
    (await api.post(SLUG, admin, ACTIVATE, {"v": version["id"]})).ok()
    return version


async def test_granting_managers_takes_effect_and_rolling_back_takes_it_away(
    api: Api, tokens: dict[str, str]
) -> None:
    admin, manager, auditor = tokens["admin"], tokens["manager"], tokens["auditor"]
    assert await _reads(api, manager) == ["FORBIDDEN"]
    audit = (POLICY_DIR / "audit.polar").read_text() + MANAGERS_READ
    cases = (
        (POLICY_DIR / "tests" / "audit.yaml")
        .read_text()
        .replace(
            "- name: a manager does not read the audit trail\n"
            "  actor: {role: manager, id: 4, department_id: 4}\n"
            "  expect: {read_audit: false}",
            "- name: a manager reads the audit trail\n"
            "  actor: {role: manager, id: 4, department_id: 4}\n"
            "  expect: {read_audit: true}",
        )
    )

    refused = await api.post(
        SLUG, admin, PROPOSE, {"files": _files(**{"audit.polar": audit}), "c": "untested"}
    )
    assert refused.codes == ["BAD_USER_INPUT"] and "read_audit" in refused.errors[0]["message"]
    granted = await _activate(
        api, admin, _files(**{"audit.polar": audit, "tests/audit.yaml": cases}), "managers audit"
    )

    report = granted["report"]["roles"]
    assert report["manager"]["auditReaders"] == [0, 1]
    assert report["auditor"]["auditReaders"] == [1, 1] and granted["report"]["changed"]
    assert await _reads(api, manager) == ["OK"]
    assert await _reads(api, auditor) == ["OK"]

    await _activate(api, admin, _files(), "back to the default")

    assert await _reads(api, manager) == ["FORBIDDEN"]
    assert await _reads(api, auditor) == ["OK"]


async def test_a_policy_without_the_rule_lets_nobody_read(api: Api, tokens: dict[str, str]) -> None:
    """Versions written before the rule existed still load; the trail is then closed to
    everyone (fail closed) while customers are served as before."""
    admin = tokens["admin"]
    await _activate(
        api, admin, _files(without=("audit.polar", "tests/audit.yaml")), "without audit rules"
    )
    try:
        for role in ("admin", "auditor", "manager"):
            assert await _reads(api, tokens[role]) == ["FORBIDDEN"]
        assert (await api.post(SLUG, admin, "{ customers(first: 1) { nodes { id } } }")).ok()
    finally:
        await _activate(api, admin, _files(), "back to the default")
    assert await _reads(api, admin) == ["OK"]


async def test_an_app_never_reads_even_if_a_rule_names_apps(
    api: Api, tokens: dict[str, str]
) -> None:
    from dangan.services.api_keys import create_app
    from dangan.tenants.registry import find_tenant

    tenant = await find_tenant(SLUG)
    assert tenant is not None
    key = (await create_app(tenant, "auditing-app", ["customers:read"])).key
    apps = (POLICY_DIR / "audit.polar").read_text() + "\ncan_read_audit(_app: PartnerApp);\n"
    await _activate(api, tokens["admin"], _files(**{"audit.polar": apps}), "apps too")
    try:
        assert await _reads(api, key) == ["FORBIDDEN"]
    finally:
        await _activate(api, tokens["admin"], _files(), "back to the default")
