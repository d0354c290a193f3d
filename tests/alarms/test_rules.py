"""Each rule, set off by real requests and evaluated by the real alarm worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from arq import create_pool
from arq.connections import RedisSettings

from dangan.audit.actions import record_action
from dangan.devstack import Endpoints
from dangan.services.people import caller_for
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers.alarms import alarm_sweep, evaluate_alarms
from tests.alarms.conftest import (
    ALL_DAY,
    SET_RULE,
    SET_SETTINGS,
    AlarmTenant,
    alerts_about,
)
from tests.support.api import Api
from tests.support.archive import START_EXPORT, run_jobs
from tests.support.world import missing_id

LOOKUP = "query Lookup($id: ID!) { customer(id: $id) { id } }"
VERSIONS = "query Versions { policyVersions { id } }"
ME = "query Me { me { id } }"
REVEAL = """mutation Reveal($id: ID!) { revealField(customerId: $id, field: "idNumber",
  reason: "checking the ID card") { value } }"""
MINE = "{ customers(first: 50) { nodes { id } } }"


async def test_requests_outside_working_hours(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any
) -> None:
    tenant, admin = alarm_tenant, alarm_tenant.tokens["admin2"]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday()
    elsewhere = {"starts": "09:00:00", "ends": "18:00:00", "days": [today % 7 + 1]}
    reply = await api.post(tenant.slug, admin, SET_SETTINGS, {"input": {"workingHours": elsewhere}})
    hours = reply.ok()["setAlarmSettings"]["settings"]["workingHours"]
    assert hours == {**elsewhere, "timeZone": "Asia/Shanghai"}
    enabled = await api.post(
        tenant.slug, admin, SET_RULE, {"rule": "off_hours", "input": {"enabled": True}}
    )
    assert enabled.ok()["setAlarmRule"]["threshold"] == 0
    try:
        late, token = await tenant.person("sales")
        for _ in range(2):
            (await api.post(tenant.slug, token, ME)).ok()
        await alarms()
        [alert] = await alerts_about(api, tenant, late.identity_id, rule="off_hours")
        assert (alert["severity"], alert["occurrences"]) == ("MEDIUM", 2)
        assert alert["evidence"]["observed"] == 2 and alert["evidence"]["operations"] == ["Me"]
        assert "outside working hours" in alert["summary"]

        # Within working hours (every day, all day) nothing is raised.
        reply = await api.post(
            tenant.slug, admin, SET_SETTINGS, {"input": {"workingHours": ALL_DAY}}
        )
        reply.ok()
        early, token = await tenant.person("sales")
        (await api.post(tenant.slug, token, ME)).ok()
        await alarms()
        assert await alerts_about(api, tenant, early.identity_id) == []
    finally:
        await api.post(
            tenant.slug, admin, SET_RULE, {"rule": "off_hours", "input": {"enabled": False}}
        )
        await api.post(tenant.slug, admin, SET_SETTINGS, {"input": {"workingHours": ALL_DAY}})
        await alarms()


async def test_probing_by_a_person_an_app_and_an_anonymous_address(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, client_at: Callable[[str], Api]
) -> None:
    tenant = alarm_tenant
    prober, token = await tenant.person("sales")
    for _ in range(11):
        assert (await api.post(tenant.slug, token, LOOKUP, {"id": missing_id()})).codes == [
            "NOT_FOUND"
        ]
    for _ in range(10):
        assert (await api.post(tenant.slug, token, VERSIONS)).codes == ["FORBIDDEN"]
    for _ in range(21):
        reply = await api.post(tenant.slug, tenant.keys["prober"], LOOKUP, {"id": missing_id()})
        assert reply.codes == ["NOT_FOUND"]
    stranger = client_at("198.51.100.9")
    for credential in [None] * 11 + ["not-a-token"] * 10:
        reply = await stranger.post(tenant.slug, credential, MINE)
        assert (reply.status, reply.codes) == (401, ["UNAUTHENTICATED"])
    await alarms()

    [person] = await alerts_about(api, tenant, prober.identity_id, rule="probing")
    assert (person["actorKind"], person["severity"], person["occurrences"]) == ("user", "HIGH", 1)
    assert person["evidence"]["observed"] == 21
    assert set(person["evidence"]["operations"]) == {"Versions"}
    [app] = [
        a
        for a in await alerts_about(api, tenant, tenant.app_ids["prober"], rule="probing")
        if a["actorKind"] == "app"
    ]
    assert (app["actorName"], app["evidence"]["observed"]) == ("prober", 21)
    [anonymous] = [
        a for a in await alerts_about(api, tenant, rule="probing") if a["actorKind"] == "anonymous"
    ]
    assert anonymous["actorId"] is None and anonymous["clientAddress"] == "198.51.100.9"
    assert anonymous["evidence"]["observed"] == 21
    assert anonymous["summary"].startswith("address 198.51.100.9: 21 requests ended")


async def test_a_burst_of_reveals(api: Api, alarm_tenant: AlarmTenant, alarms: Any) -> None:
    revealer, token = await alarm_tenant.person("sales", customers=11)
    mine = (await api.post(alarm_tenant.slug, token, MINE)).ok()["customers"]["nodes"]
    assert len(mine) == 11
    for customer in mine:
        revealed = await api.post(alarm_tenant.slug, token, REVEAL, {"id": customer["id"]})
        assert revealed.ok()["revealField"]["value"]
    await alarms()
    [alert] = await alerts_about(api, alarm_tenant, revealer.identity_id)
    assert (alert["rule"], alert["severity"], alert["occurrences"]) == ("reveal_burst", "MEDIUM", 1)
    assert alert["evidence"]["observed"] == 11 and alert["evidence"]["operations"] == ["Reveal"]


async def test_an_export_spike(
    api: Api,
    alarm_tenant: AlarmTenant,
    alarms: Any,
    settings: Settings,
    endpoints: Endpoints,
) -> None:
    exporter, token = await alarm_tenant.person("sales", customers=2)
    try:
        for _ in range(4):
            started = await api.post(
                alarm_tenant.slug, token, START_EXPORT, {"input": {"format": "CSV"}}
            )
            assert started.ok()["startCustomerExport"]["status"] == "QUEUED"
        await alarms()
        [alert] = await alerts_about(api, alarm_tenant, exporter.identity_id)
        assert (alert["rule"], alert["severity"]) == ("export_spike", "HIGH")
        assert alert["evidence"]["observed"] == 4 and alert["evidence"]["windowMinutes"] == 60
    finally:
        await run_jobs(settings, endpoints)  # the exports themselves: leave no queued job


async def test_a_credential_used_from_a_new_address(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, client_at: Callable[[str], Api]
) -> None:
    tenant = alarm_tenant
    traveller, token = await tenant.person("sales")
    newcomer, newcomer_token = await tenant.person("sales")
    abroad = client_at("192.0.2.7")
    (await api.post(tenant.slug, token, ME)).ok()  # from 10.1.2.3
    (await abroad.post(tenant.slug, token, ME)).ok()
    (await abroad.post(tenant.slug, token, ME)).ok()  # now known: nothing more
    (await abroad.post(tenant.slug, newcomer_token, ME)).ok()  # a first use is not an alarm
    (await api.post(tenant.slug, tenant.keys["reader"], MINE)).ok()
    (await client_at("203.0.113.5").post(tenant.slug, tenant.keys["reader"], MINE)).ok()
    await alarms()

    [alert] = await alerts_about(api, tenant, traveller.identity_id)
    assert (alert["rule"], alert["occurrences"], alert["clientAddress"]) == (
        "new_address",
        1,
        "192.0.2.7",
    )
    assert alert["evidence"]["details"] == {"address": "192.0.2.7", "knownAddresses": ["10.1.2.3"]}
    assert alert["summary"] == f"{traveller.display_name} was used from a new address, 192.0.2.7"
    assert await alerts_about(api, tenant, newcomer.identity_id) == []
    [app] = [
        a
        for a in await alerts_about(api, tenant, tenant.app_ids["reader"], rule="new_address")
        if a["actorKind"] == "app"
    ]
    assert app["evidence"]["details"]["address"] == "203.0.113.5"


async def test_a_burst_of_requests_asks_for_one_evaluation_and_a_rerun_finds_nothing_new(
    api: Api,
    alarm_tenant: AlarmTenant,
    alarms: Any,
    settings: Settings,
    endpoints: Endpoints,
) -> None:
    tenant = alarm_tenant
    await alarms()
    queue = await create_pool(RedisSettings.from_dsn(endpoints.redis_url))
    try:
        started = time.time()
        for _ in range(10):
            (await api.post(tenant.slug, tenant.tokens["manager"], ME)).ok()
        prefix = f"{settings.redis_namespace}:alarms:evaluate:{tenant.ref.id}:"
        queued = [
            job.decode()
            for job in await queue.zrange(settings.alarm_queue_name, 0, -1)
            if job.decode().startswith(prefix)
        ]
        # One job per slot of alarm_delay_seconds (the burst may straddle two).
        slots = int(time.time() - started) + 2
        assert 1 <= len(queued) <= slots
        await alarms()

        async def cursor() -> int:
            return int(await raw_connection().fetchval("SELECT last_seq FROM alarm_cursor"))

        async def head() -> int:
            return int(await raw_connection().fetchval("SELECT last_seq FROM audit_head"))

        assert await run_in_tenant(tenant.ref, cursor) == await run_in_tenant(tenant.ref, head)
        ctx = {"settings": settings, "redis": queue}
        again = await evaluate_alarms(ctx, tenant.slug)
        assert again == {
            "tenant": tenant.slug,
            "events": 0,
            "lastSeq": await run_in_tenant(tenant.ref, head),
            "opened": [],
        }
        assert await evaluate_alarms(ctx, "nosuchtenant") == {
            "tenant": "nosuchtenant",
            "skipped": True,
        }
    finally:
        await queue.aclose()


async def test_exports_at_a_terminal_count_and_jobs_rows_are_not_bulk_reads(
    api: Api, alarm_tenant: AlarmTenant, alarms: Any, settings: Settings, endpoints: Endpoints
) -> None:
    tenant = alarm_tenant
    person, _ = await tenant.person("sales")
    caller = caller_for(tenant.ref, person)
    everyone = [uuid.uuid4() for _ in range(400)]

    async def record() -> None:
        for _ in range(4):  # `dangan customers export` as the person
            await record_action(settings.secret_key, "export.run", origin="cli", actor=caller)
        # An export job sending 400 customers on the person's behalf: not a read of theirs.
        await record_action(
            settings.secret_key, "export.run", origin="job", actor=caller, customers=everyone
        )

    await run_in_tenant(tenant.ref, record)
    # No request asked for an evaluation: the sweep (cron, every minute) finds these.
    queue = await create_pool(RedisSettings.from_dsn(endpoints.redis_url))
    try:
        swept = await alarm_sweep({"settings": settings, "redis": queue})
    finally:
        await queue.aclose()
    assert swept["queued"] >= 1
    await alarms()
    [alert] = await alerts_about(api, tenant, person.identity_id)
    assert (alert["rule"], alert["evidence"]["observed"]) == ("export_spike", 4)
