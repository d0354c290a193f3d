"""A rule with ``suspend`` stops the actor's credential until an administrator
reinstates it; the tenant's last administrator is never suspended."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.api_keys import create_app
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from tests.alarms.conftest import ALERT, SET_RULE, AlarmTenant, alerts_about
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import missing_id

LOOKUP = "query($id: ID!) { customer(id: $id) { id } }"
ME = "{ me { id } }"
PROBING_ALERTS = '{ alerts(filter: {rule: "probing"}) { id actorId suspended evidence } }'
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
CLOSE = """mutation($id: Int!, $reason: String!, $reinstate: Boolean!) {
  closeAlert(id: $id, reason: $reason, reinstate: $reinstate) {
  id status closedBy closeReason reinstatedBy reinstateReason suspensionActive } }"""
REINSTATE = """mutation($id: Int!, $reason: String!) { reinstateActor(alertId: $id, reason: $reason) {
  id status reinstatedBy reinstateReason suspended suspensionActive } }"""


async def probe(api: Api, slug: str, credential: str) -> None:
    for _ in range(21):
        reply = await api.post(slug, credential, LOOKUP, {"id": missing_id()})
        assert reply.codes == ["NOT_FOUND"]


async def set_suspend(api: Api, slug: str, admin: str, suspend: bool) -> None:
    reply = await api.post(
        slug, admin, SET_RULE, {"rule": "probing", "input": {"suspend": suspend}}
    )
    assert reply.ok()["setAlarmRule"]["suspend"] is suspend


@pytest.fixture
async def suspending(api: Api, alarm_tenant: AlarmTenant, alarms: Any) -> AsyncIterator[None]:
    await set_suspend(api, alarm_tenant.slug, alarm_tenant.tokens["admin"], True)
    yield
    await set_suspend(api, alarm_tenant.slug, alarm_tenant.tokens["admin"], False)
    await alarms()


def suspended_by(reply: Any) -> int:
    assert (reply.status, reply.codes) == (403, ["FORBIDDEN"]), reply.body
    found = re.search(r"suspended pending review of alert (\d+)$", reply.errors[0]["message"])
    assert found, reply.errors[0]["message"]
    return int(found.group(1))


async def test_a_suspended_person_is_refused_until_reinstated(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, suspending: None
) -> None:
    tenant = alarm_tenant
    person, token = await tenant.person("sales")
    password = f"{tenant.slug}-{person.email.split('@')[0].split('-')[1]}-password"
    assert (await api.post(tenant.slug, None, LOGIN, {"e": person.email, "p": password})).ok()
    await probe(api, tenant.slug, token)
    await alarms()

    [alert] = await alerts_about(api, tenant, person.identity_id, rule="probing")
    assert alert["suspended"] is True and alert["suspensionActive"] is True
    refused = await api.post(tenant.slug, token, ME)
    assert suspended_by(refused) == alert["id"]
    assert refused.errors[0]["message"] == (
        f"your access to {tenant.slug} is suspended pending review of alert {alert['id']}"
    )
    # Signing in again gives nothing either (and says why only with the right password).
    login = await api.post(tenant.slug, None, LOGIN, {"e": person.email, "p": password})
    assert login.codes == ["FORBIDDEN"] and "pending review of alert" in login.errors[0]["message"]
    wrong = await api.post(tenant.slug, None, LOGIN, {"e": person.email, "p": "not-it-at-all"})
    assert wrong.codes == ["UNAUTHENTICATED"] and "alert" not in wrong.errors[0]["message"]
    # Everyone else carries on.
    (await api.post(tenant.slug, tenant.tokens["manager"], ME)).ok()

    closed = await api.post(
        tenant.slug,
        tenant.tokens["admin"],
        CLOSE,
        {"id": alert["id"], "reason": "a mistyped id in a script", "reinstate": True},
    )
    assert closed.ok()["closeAlert"] == {
        "id": alert["id"],
        "status": "CLOSED",
        "closedBy": tenant.people["admin"].identity_id,
        "closeReason": "a mistyped id in a script",
        "reinstatedBy": tenant.people["admin"].identity_id,
        "reinstateReason": "a mistyped id in a script",
        "suspensionActive": False,
    }
    # Lifted at once, for the token and for signing in.
    assert (await api.post(tenant.slug, token, ME)).ok()["me"]["id"] == person.identity_id
    assert (await api.post(tenant.slug, None, LOGIN, {"e": person.email, "p": password})).ok()
    # The evaluation after it leaves the person reinstated.
    await alarms()
    (await api.post(tenant.slug, token, ME)).ok()


async def test_a_partner_app_key_is_suspended_and_reinstated(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, suspending: None
) -> None:
    tenant = alarm_tenant
    app = await create_app(tenant.ref, f"scraper-{uuid.uuid4().hex[:6]}", ["customers:read"])
    await probe(api, tenant.slug, app.key)
    await alarms()

    [alert] = [
        a
        for a in await alerts_about(api, tenant, app.app_id, rule="probing")
        if a["actorKind"] == "app"
    ]
    refused = await api.post(tenant.slug, app.key, ME)
    assert suspended_by(refused) == alert["id"]
    assert refused.errors[0]["message"].startswith(f"this API key's access to {tenant.slug}")

    reinstated = await api.post(
        tenant.slug, tenant.tokens["admin"], REINSTATE, {"id": alert["id"], "reason": "reviewed"}
    )
    assert reinstated.ok()["reinstateActor"] == {
        "id": alert["id"],
        "status": "OPEN",  # reviewed, not closed
        "reinstatedBy": tenant.people["admin"].identity_id,
        "reinstateReason": "reviewed",
        "suspended": True,
        "suspensionActive": False,
    }
    (await api.post(tenant.slug, app.key, ME)).ok()
    again = await api.post(
        tenant.slug, tenant.tokens["admin"], REINSTATE, {"id": alert["id"], "reason": "again"}
    )
    assert again.codes == ["CONFLICT"]


async def test_the_last_administrator_is_never_suspended(
    api: Api, settings: Settings, alarms: Any
) -> None:
    slug = "alarmlast"
    await drop_tenant(slug)
    tenant = await create_tenant(slug, "Last Admin Ltd")
    try:
        tokens: dict[str, str] = {}
        ids: dict[str, int] = {}
        for who in ("first", "second"):
            person = await create_user(tenant, f"{who}@{slug}.test", ["admin"], display_name=who)
            ids[who] = person.identity_id
            tokens[who] = issue_token(
                person.identity_id, slug, secret=settings.secret_key, ttl_seconds=600
            ).token
        await set_suspend(api, slug, tokens["first"], True)
        await probe(api, slug, tokens["first"])
        await alarms()
        first_alert = suspended_by(await api.post(slug, tokens["first"], ME))

        # The second is now the only administrator not suspended: never suspended.
        await probe(api, slug, tokens["second"])
        await alarms()
        (await api.post(slug, tokens["second"], ME)).ok()
        alerts = (await api.post(slug, tokens["second"], PROBING_ALERTS)).ok()
        [second_alert] = [a for a in alerts["alerts"] if a["actorId"] == ids["second"]]
        assert second_alert["suspended"] is False
        assert second_alert["evidence"]["suspension"] == (
            "not suspended: the tenant's last administrator who is not suspended"
        )

        # Nobody reviews an alert about themselves; the second reinstates the first.
        own = await api.post(
            slug,
            tokens["second"],
            CLOSE,
            {"id": second_alert["id"], "reason": "me", "reinstate": False},
        )
        assert own.codes == ["FORBIDDEN"] and "about you" in own.errors[0]["message"]
        reinstated = await api.post(
            slug, tokens["second"], REINSTATE, {"id": first_alert, "reason": "ok"}
        )
        reinstated.ok()
        closed = await api.post(
            slug,
            tokens["first"],
            CLOSE,
            {"id": second_alert["id"], "reason": "drill", "reinstate": False},
        )
        assert closed.ok()["closeAlert"]["status"] == "CLOSED"
        shown = (await api.post(slug, tokens["first"], ALERT, {"id": first_alert})).ok()["alert"]
        assert shown["reinstatedBy"] == ids["second"] and shown["status"] == "OPEN"
    finally:
        await drop_tenant(slug)
