"""Bulk reads raise one alert per reader, and new alerts reach the webhook signed; a
webhook that fails is tried again, then recorded as failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from dangan.alarms.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.alarms.conftest import (
    SET_SETTINGS,
    AlarmTenant,
    Receiver,
    alerts_about,
)
from tests.support.api import Api
from tests.support.world import missing_id

PAGE = """query($after: String) { customers(first: 100, after: $after) {
  nodes { id name } pageInfo { hasNextPage endCursor } } }"""
MISSING = "query($id: ID!) { customer(id: $id) { id } }"
SETTINGS = "{ alarmSettings { webhookUrl webhookSecretSet defaultWebhook } }"


async def alarm_events(tenant: AlarmTenant) -> list[dict[str, Any]]:
    """The tenant's ``alert.open`` events, their variables decoded."""

    async def read() -> list[Any]:
        return await raw_connection().fetch(
            "SELECT actor_kind, operation_type, variables FROM audit_event"
            " WHERE 'alert.open' = ANY(actions) ORDER BY seq"
        )

    rows = await run_in_tenant(tenant.ref, read)
    return [{**dict(row), "variables": orjson.loads(row["variables"])} for row in rows]


async def read_pages(api: Api, tenant: AlarmTenant, token: str, pages: int) -> list[str]:
    ids: list[str] = []
    after = None
    for _ in range(pages):
        page = (await api.post(tenant.slug, token, PAGE, {"after": after})).ok()["customers"]
        ids += [node["id"] for node in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    return ids


async def probe(api: Api, tenant: AlarmTenant, token: str, times: int = 21) -> None:
    for _ in range(times):
        reply = await api.post(tenant.slug, token, MISSING, {"id": missing_id()})
        assert reply.codes == ["NOT_FOUND"]


@pytest.fixture
async def webhook(api: Api, alarm_tenant: AlarmTenant, receiver: Receiver) -> AsyncIterator[str]:
    """The tenant's webhook pointed at the receiver; yields the secret shown once."""
    tenant = alarm_tenant
    reply = await api.post(
        tenant.slug, tenant.tokens["admin"], SET_SETTINGS, {"input": {"webhookUrl": receiver.url}}
    )
    configured = reply.ok()["setAlarmSettings"]
    assert configured["settings"]["webhookUrl"] == receiver.url
    assert configured["settings"]["webhookSecretSet"] is True
    assert configured["settings"]["defaultWebhook"] is False
    yield configured["webhookSecret"]
    cleared = await api.post(
        tenant.slug, tenant.tokens["admin"], SET_SETTINGS, {"input": {"webhookUrl": None}}
    )
    assert cleared.ok()["setAlarmSettings"]["settings"]["webhookSecretSet"] is False


def signed(secret: str, received: Any) -> bool:
    headers = {key.lower(): value for key, value in received.headers.items()}
    return verify_signature(
        secret,
        headers[TIMESTAMP_HEADER.lower()],
        received.body,
        headers[SIGNATURE_HEADER.lower()],
    )


async def test_reading_500_customers_raises_one_alert_and_a_signed_webhook(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, receiver: Receiver, webhook: str
) -> None:
    tenant = alarm_tenant
    sales = tenant.people["sales"]
    assert webhook.startswith("dgwh_")
    read = await read_pages(api, tenant, tenant.tokens["sales"], pages=5)
    assert len(set(read)) == 500
    await alarms()

    [alert] = await alerts_about(api, tenant, sales.identity_id, rule="bulk_read")
    assert (alert["status"], alert["severity"], alert["actorKind"]) == ("OPEN", "HIGH", "user")
    assert alert["actorName"] == f"{tenant.slug}-sales"
    assert alert["clientAddress"] == "10.1.2.3"
    evidence = alert["evidence"]
    assert (evidence["threshold"], evidence["windowMinutes"]) == (300, 5)
    assert 300 < evidence["observed"] <= 500
    assert alert["summary"] == (
        f"{tenant.slug}-sales was sent {evidence['observed']} distinct customers within 5 minutes"
    )
    # The pages after the 300th customer set it off: the 4th and the 5th.
    assert alert["occurrences"] == 2 and len(evidence["events"]) == 2
    assert alert["firstSeq"] == evidence["events"][0] and alert["lastSeq"] == evidence["events"][1]
    # Opening it is in the audit trail too, as the system's (no rule counts it).
    [opened] = [
        event for event in await alarm_events(tenant) if event["variables"]["alert"] == alert["id"]
    ]
    assert (opened["actor_kind"], opened["operation_type"]) == ("system", "job")
    assert opened["variables"] == {"alert": alert["id"], "rule": "bulk_read", "suspended": False}

    [delivered] = receiver.received
    assert signed(webhook, delivered)
    body = orjson.loads(delivered.body)
    assert body["event"] == "alert.opened" and body["tenant"] == tenant.slug
    assert body["alert"]["id"] == alert["id"] and body["alert"]["rule"] == "bulk_read"
    assert body["alert"]["evidence"]["observed"] == evidence["observed"]
    assert delivered.headers["X-Dangan-Delivery"] == f"{tenant.slug}-{alert['id']}"
    # What a receiver must refuse: another secret, an edited body, an old timestamp.
    headers = delivered.headers
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert not verify_signature("another-secret", stamp, delivered.body, signature)
    assert not verify_signature(webhook, stamp, delivered.body.replace(b"high", b"low"), signature)
    assert not verify_signature(webhook, stamp, delivered.body, signature, now=int(stamp) + 3600)
    # The attempt is kept, without the URL's query string (it may hold a key).
    [attempt] = alert["deliveries"]
    assert attempt == {
        "attempt": 1,
        "url": receiver.url.split("?")[0],
        "statusCode": 200,
        "error": None,
        "outcome": "delivered",
    }

    # Reading on adds to the open alert: no second alert, no second webhook.
    await read_pages(api, tenant, tenant.tokens["sales"], pages=1)
    await alarms()
    [again] = await alerts_about(api, tenant, sales.identity_id, rule="bulk_read")
    assert again["id"] == alert["id"] and again["occurrences"] == 3
    assert again["lastSeq"] > alert["lastSeq"]
    assert len(receiver.received) == 1


async def test_reading_under_the_threshold_raises_nothing(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any
) -> None:
    person, token = await alarm_tenant.person("sales", customers=120)
    assert len(await read_pages(api, alarm_tenant, token, pages=2)) == 120
    await alarms()
    assert await alerts_about(api, alarm_tenant, person.identity_id) == []


async def test_a_failing_webhook_is_tried_again_then_marked_failed(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, receiver: Receiver, webhook: str
) -> None:
    receiver.status = 500
    person, token = await alarm_tenant.person("sales")
    await probe(api, alarm_tenant, token)
    await alarms(alarm_webhook_max_tries=3, alarm_webhook_backoff_seconds=0.1)

    [alert] = await alerts_about(api, alarm_tenant, person.identity_id, rule="probing")
    assert [
        (d["attempt"], d["statusCode"], d["error"], d["outcome"]) for d in alert["deliveries"]
    ] == [
        (1, 500, "HTTP 500", "retrying"),
        (2, 500, "HTTP 500", "retrying"),
        (3, 500, "HTTP 500", "failed"),
    ]
    assert len(receiver.received) == 3
    assert all(signed(webhook, got) for got in receiver.received)
    assert {got.headers["X-Dangan-Delivery"] for got in receiver.received} == {
        f"{alarm_tenant.slug}-{alert['id']}"
    }


async def test_a_tenant_webhook_may_not_reach_private_addresses(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, receiver: Receiver, webhook: str
) -> None:
    person, token = await alarm_tenant.person("sales")
    await probe(api, alarm_tenant, token)
    await alarms(alarm_webhook_allow_private=False)

    [alert] = await alerts_about(api, alarm_tenant, person.identity_id, rule="probing")
    [attempt] = alert["deliveries"]
    assert attempt["outcome"] == "failed" and attempt["statusCode"] is None
    assert "127.0.0.1 is a private address" in attempt["error"]
    assert receiver.received == []


async def test_without_a_webhook_of_its_own_a_tenant_uses_the_operators(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, receiver: Receiver
) -> None:
    shown = await api.post(alarm_tenant.slug, alarm_tenant.tokens["auditor"], SETTINGS)
    assert shown.ok()["alarmSettings"]["webhookUrl"] is None
    person, token = await alarm_tenant.person("sales")
    await probe(api, alarm_tenant, token)
    operator_secret = "operator-secret-0123456789"
    # The operator's URL is not checked for private addresses (it is the operator's).
    await alarms(
        alarm_webhook_url=receiver.url,
        alarm_webhook_secret=operator_secret,
        alarm_webhook_allow_private=False,
    )
    [alert] = await alerts_about(api, alarm_tenant, person.identity_id, rule="probing")
    assert [d["outcome"] for d in alert["deliveries"]] == ["delivered"]
    [delivered] = receiver.received
    assert signed(operator_secret, delivered)
    assert orjson.loads(delivered.body)["alert"]["id"] == alert["id"]
