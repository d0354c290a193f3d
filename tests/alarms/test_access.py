"""Who may read and decide alerts and configure rules; what a decision records; another
tenant's alerts never show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.alarms.conftest import ALERT, ALERTS, SET_RULE, SET_SETTINGS, AlarmTenant, alerts_about
from tests.support.api import Api
from tests.support.world import World, missing_id

LOOKUP = "query($id: ID!) { customer(id: $id) { id } }"
ACKNOWLEDGE = """mutation($id: Int!, $note: String) { acknowledgeAlert(id: $id, note: $note) {
  id status acknowledgedBy acknowledgeNote acknowledgedAt } }"""
CLOSE = """mutation($id: Int!, $reason: String!) { closeAlert(id: $id, reason: $reason) {
  id status closedBy closeReason closedAt } }"""
REINSTATE = 'mutation($id: Int!) { reinstateActor(alertId: $id, reason: "ok") { id } }'
RULES = "{ alarmRules { rule enabled threshold windowMinutes severity suspend description } }"
SETTINGS = "{ alarmSettings { webhookUrl workingHours { timeZone } } }"


async def opened_alert(api: Api, tenant: AlarmTenant, alarms: Any) -> dict[str, Any]:
    person, token = await tenant.person("sales")
    for _ in range(21):
        reply = await api.post(tenant.slug, token, LOOKUP, {"id": missing_id()})
        assert reply.codes == ["NOT_FOUND"]
    await alarms()
    [alert] = await alerts_about(api, tenant, person.identity_id, rule="probing")
    alert["token"] = token
    return alert


def attempts(alert_id: int) -> list[tuple[str, dict[str, Any]]]:
    """Every alarm operation, reading first then deciding and configuring."""
    return [
        (ALERTS, {"filter": {}}),
        (ALERT, {"id": alert_id}),
        (RULES, {}),
        (SETTINGS, {}),
        (ACKNOWLEDGE, {"id": alert_id, "note": "mine"}),
        (CLOSE, {"id": alert_id, "reason": "nothing to see"}),
        (REINSTATE, {"id": alert_id}),
        (SET_RULE, {"rule": "bulk_read", "input": {"threshold": 100000}}),
        (SET_SETTINGS, {"input": {"webhookUrl": "https://attacker.example/hook"}}),
    ]


async def test_only_admins_decide_and_admins_and_auditors_read(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any
) -> None:
    tenant = alarm_tenant
    alert = await opened_alert(api, tenant, alarms)
    callers = {
        "sales": tenant.tokens["sales"],
        "sales2": tenant.tokens["sales2"],
        "manager": tenant.tokens["manager"],
        "partner app": tenant.keys["reader"],
        "the alert's own actor": alert["token"],
    }
    for who, credential in callers.items():
        for query, variables in attempts(alert["id"]):
            reply = await api.post(tenant.slug, credential, query, variables)
            assert reply.codes == ["FORBIDDEN"], (who, query, reply.body)
            assert reply.data is None and alert["summary"] not in reply.text
    auditor = tenant.tokens["auditor"]
    for query, variables in attempts(alert["id"])[:4]:
        (await api.post(tenant.slug, auditor, query, variables)).ok()
    for query, variables in attempts(alert["id"])[4:]:
        assert (await api.post(tenant.slug, auditor, query, variables)).codes == ["FORBIDDEN"]
    # Nothing was changed by any of them.
    [unchanged] = await alerts_about(api, tenant, alert["actorId"], rule="probing")
    assert unchanged["status"] == "OPEN" and unchanged["acknowledgedAt"] is None
    rules = (await api.post(tenant.slug, tenant.tokens["admin"], RULES)).ok()["alarmRules"]
    assert next(r for r in rules if r["rule"] == "bulk_read")["threshold"] == 300


async def test_acknowledging_and_closing_record_who_when_and_why(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any
) -> None:
    tenant, admin = alarm_tenant, alarm_tenant.tokens["admin"]
    admin_id = tenant.people["admin"].identity_id
    alert = await opened_alert(api, tenant, alarms)
    acknowledged = await api.post(
        tenant.slug, admin, ACKNOWLEDGE, {"id": alert["id"], "note": " asking  them "}
    )
    shown = acknowledged.ok()["acknowledgeAlert"]
    assert (shown["status"], shown["acknowledgedBy"], shown["acknowledgeNote"]) == (
        "ACKNOWLEDGED",
        admin_id,
        "asking them",
    )
    again = await api.post(tenant.slug, admin, ACKNOWLEDGE, {"id": alert["id"]})
    assert again.codes == ["CONFLICT"]
    unexplained = await api.post(tenant.slug, admin, CLOSE, {"id": alert["id"], "reason": "  "})
    assert (
        unexplained.codes == ["BAD_USER_INPUT"]
        and unexplained.errors[0]["extensions"]["field"] == "reason"
    )
    closed = await api.post(
        tenant.slug, admin, CLOSE, {"id": alert["id"], "reason": "a test script"}
    )
    shown = closed.ok()["closeAlert"]
    assert (shown["status"], shown["closedBy"], shown["closeReason"]) == (
        "CLOSED",
        admin_id,
        "a test script",
    )
    assert datetime.fromisoformat(shown["closedAt"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert (
        await api.post(tenant.slug, admin, CLOSE, {"id": alert["id"], "reason": "x"})
    ).codes == ["CONFLICT"]
    missing = await api.post(tenant.slug, admin, ALERT, {"id": 2_000_000_000})
    assert missing.codes == ["NOT_FOUND"]

    # Closed, the same rule and actor open a new alert.
    for _ in range(21):
        await api.post(tenant.slug, alert["token"], LOOKUP, {"id": missing_id()})
    await alarms()
    found = await alerts_about(api, tenant, alert["actorId"], rule="probing")
    assert [a["status"] for a in found] == ["OPEN", "CLOSED"] and found[0]["id"] > alert["id"]
    # Filters: status, severity, rule, period.
    query = {"status": "CLOSED", "severity": "HIGH", "rule": "probing"}
    closed_ids = [a["id"] for a in await alerts_about(api, tenant, **query)]
    assert alert["id"] in closed_ids and found[0]["id"] not in closed_ids
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await alerts_about(api, tenant, openedFrom=future) == []
    assert await alerts_about(api, tenant, rule="export_spike", status="CLOSED") == []


async def test_another_tenants_alerts_are_never_visible(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, world: World
) -> None:
    tenant = alarm_tenant
    alert = await opened_alert(api, tenant, alarms)
    alpha = world["alpha"].tokens["admin"]
    listed = (await api.post("alpha", alpha, ALERTS, {"filter": {}})).ok()["alerts"]
    assert not [a for a in listed if (a["actorName"] or "").startswith(tenant.slug)]
    shown = await api.post("alpha", alpha, ALERT, {"id": alert["id"]})
    assert shown.codes == ["NOT_FOUND"] or shown.ok()["alert"]["summary"] != alert["summary"]
    assert alert["summary"] not in shown.text
    decided = await api.post("alpha", alpha, CLOSE, {"id": alert["id"], "reason": "not yours"})
    assert alert["summary"] not in decided.text
    [still] = await alerts_about(api, tenant, alert["actorId"], rule="probing")
    assert still["status"] == "OPEN"
    # A token of one tenant is refused by the other outright.
    elsewhere = await api.post("alpha", tenant.tokens["admin"], ALERTS, {"filter": {}})
    assert (elsewhere.status, elsewhere.codes) == (403, ["FORBIDDEN"])


async def test_rules_and_settings_are_checked(api: Api, alarm_tenant: AlarmTenant) -> None:
    tenant, admin = alarm_tenant, alarm_tenant.tokens["admin"]
    rules = (await api.post(tenant.slug, admin, RULES)).ok()["alarmRules"]
    assert {r["rule"]: (r["threshold"], r["windowMinutes"], r["severity"]) for r in rules} == {
        "bulk_read": (300, 5, "HIGH"),
        "export_spike": (3, 60, "HIGH"),
        "new_address": (None, None, "MEDIUM"),
        "off_hours": (0, 60, "MEDIUM"),
        "probing": (20, 5, "HIGH"),
        "reveal_burst": (10, 10, "MEDIUM"),
        "backup_failed": (None, None, "HIGH"),  # raised by the backup job (version 14)
    }
    bulk = next(r for r in rules if r["rule"] == "bulk_read")
    assert bulk["description"].startswith(
        "a person or app is sent more than 300 distinct customers"
    )

    def rule(name: str, **change: Any) -> dict[str, Any]:
        return {"rule": name, "input": change}

    changed = await api.post(
        tenant.slug, admin, SET_RULE, rule("reveal_burst", threshold=25, severity="CRITICAL")
    )
    assert changed.ok()["setAlarmRule"] | {"description": None} == {
        "rule": "reveal_burst",
        "enabled": True,
        "threshold": 25,
        "windowMinutes": 10,
        "severity": "CRITICAL",
        "suspend": False,
        "description": None,
        "updatedBy": tenant.people["admin"].identity_id,
    }
    restored = await api.post(
        tenant.slug, admin, SET_RULE, rule("reveal_burst", threshold=10, severity="MEDIUM")
    )
    restored.ok()
    for variables, code, field in (
        (rule("nosuch", enabled=False), "NOT_FOUND", "rule"),
        (rule("new_address", threshold=3), "BAD_USER_INPUT", "threshold"),
        (rule("probing", windowMinutes=0), "BAD_USER_INPUT", "windowMinutes"),
        (rule("probing", threshold=-1), "BAD_USER_INPUT", "threshold"),
        # About the platform's own work: never off, never suspending anyone.
        (rule("backup_failed", enabled=False), "BAD_USER_INPUT", "enabled"),
        (rule("backup_failed", suspend=True), "BAD_USER_INPUT", "suspend"),
    ):
        reply = await api.post(tenant.slug, admin, SET_RULE, variables)
        assert reply.codes == [code] and reply.errors[0]["extensions"]["field"] == field, variables
    hours = {"starts": "09:00:00", "ends": "18:00:00", "days": [1]}
    for change, field in (
        ({"webhookUrl": "ftp://example.com/x"}, "webhookUrl"),
        ({"webhookUrl": "https://"}, "webhookUrl"),
        ({"newWebhookSecret": True}, "newWebhookSecret"),
        ({"workingHours": {**hours, "timeZone": "Mars/Olympus"}}, "workingHours.timeZone"),
        ({"workingHours": {**hours, "days": [0, 8]}}, "workingHours.days"),
        ({"workingHours": {**hours, "ends": "09:00:00"}}, "workingHours"),
    ):
        reply = await api.post(tenant.slug, admin, SET_SETTINGS, {"input": change})
        assert reply.codes == ["BAD_USER_INPUT"], change
        assert reply.errors[0]["extensions"]["field"] == field
    settings = (await api.post(tenant.slug, admin, SETTINGS)).ok()["alarmSettings"]
    assert settings == {"webhookUrl": None, "workingHours": {"timeZone": "Asia/Shanghai"}}
