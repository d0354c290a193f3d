"""Swapping a restored schema in: the API serves it from the next request, to the same
people and no others; the schema it replaced is kept for its days, then dropped, and so
is a scratch schema a crashed restore left behind — never the live one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import CheckpointStore
from dangan.audit.verify import verify_tenant
from dangan.backups.loading import RestoreError, restore
from dangan.services.api_keys import create_app
from dangan.services.customers import create_customer
from dangan.services.people import caller_for, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.names import quote_ident
from dangan.tenants.restoring import create_scratch, drop_retired, drop_scratch
from dangan.tenants.scope import run_in_tenant
from dangan.tenants.versions import LATEST_TENANT_VERSION
from tests.backups.filled import CUSTOMERS, Filled
from tests.backups.restores import (
    COUNT,
    checksums,
    in_tenant,
    platform,
    registry,
    schemas_of,
    take_backup,
)
from tests.support.api import Api
from tests.support.world import World

HEAD = "SELECT jsonb_build_object('seq', last_seq, 'hash', last_hash) FROM audit_head"
LAST_OLD_EVENT = (
    "SELECT jsonb_build_object('seq', seq, 'hash', hash) FROM audit_event ORDER BY seq DESC LIMIT 1"
)
RESTORE_EVENT = (
    "SELECT jsonb_build_object('seq', seq, 'type', operation_type, 'variables', variables)"
    " FROM audit_event WHERE actions = '{backup.restore}'"
)


async def names(api: Api, filled: Filled) -> set[str]:
    data = (await api.post(filled.ref.slug, filled.tokens["admin"], COUNT)).ok()
    return {edge["node"]["name"] for edge in data["customers"]["edges"]}


async def test_the_api_serves_the_restored_schema_to_its_own_people_only(
    filled: Filled, api: Api, world: World, settings: Settings, store: CheckpointStore
) -> None:
    tenant = filled.ref
    before = await names(api, filled)
    assert len(before) == CUSTOMERS
    backup = await take_backup(tenant)
    gone = await in_tenant(
        tenant, "DELETE FROM customer WHERE id = $1 RETURNING name", filled.customers[2]
    )
    assert await names(api, filled) == before - {gone}

    restored = await restore(
        tenant,
        backup.snapshot,
        backup.read,
        keep_days=7,
        reason="restore of backup test-1",
        record=ActionLog(settings.secret_key, "cli", {"backup": "test-1"}).recorder(),
    )

    assert await names(api, filled) == before
    live = await registry(tenant)
    # The audit trail was carried over, the restore appended to it, saying so.
    event = orjson.loads(await in_tenant(live, RESTORE_EVENT))
    old_head = orjson.loads(await in_tenant(tenant, LAST_OLD_EVENT))
    assert await in_tenant(tenant, "SELECT count(*) FROM audit_head") == 0  # it moved
    assert (event["seq"], event["type"]) == (old_head["seq"] + 1, "cli")
    assert event["variables"]["previousHead"] == old_head
    assert event["variables"]["auditTrail"] == "carried over"
    assert event["variables"]["retiredSchema"] == tenant.schema_name
    assert event["variables"]["backup"] == "test-1"
    assert event["variables"]["rows"] == restored.loaded.rows
    assert (await verify_tenant(live, store)).ok
    # Same people, same refusals: another tenant's admin is not let in, ours not out.
    alpha = world["alpha"]
    refused = await api.post(tenant.slug, alpha.tokens["admin"], COUNT)
    assert refused.status == 403 and refused.data is None
    assert (await api.post(alpha.slug, filled.tokens["admin"], COUNT)).status == 403
    sales = (await api.post(tenant.slug, filled.tokens["sales"], COUNT)).ok()
    assert sales["customers"]["totalCount"] == CUSTOMERS  # all hers, as before
    rows = await platform(
        "SELECT schema_name, reason, drop_after - retired_at AS kept"
        " FROM public.retired_schema WHERE tenant_id = $1",
        tenant.id,
    )
    assert rows == [
        {
            "schema_name": tenant.schema_name,
            "reason": "restore of backup test-1",
            "kept": timedelta(days=7),
        }
    ]


async def test_a_restore_over_a_stale_registry_entry_swaps_nothing(filled: Filled) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    first = await restore(tenant, backup.snapshot, backup.read, keep_days=7)
    live = await registry(tenant)
    after_first = await checksums(live)

    # A second restore that read the registry before the first one swapped.
    with pytest.raises(RestoreError, match=f"no longer uses schema {tenant.schema_name}"):
        await restore(tenant, backup.snapshot, backup.read, keep_days=7)

    assert await registry(tenant) == live
    assert await checksums(live) == after_first
    assert await schemas_of(tenant) == sorted([tenant.schema_name, first.loaded.schema.schema_name])


async def test_retired_and_abandoned_schemas_are_dropped_in_time(filled: Filled) -> None:
    tenant = filled.ref
    now = datetime.now(UTC)
    backup = await take_backup(tenant)
    await restore(tenant, backup.snapshot, backup.read, keep_days=3)
    live = await registry(tenant)
    crashed = await create_scratch(live, LATEST_TENANT_VERSION, now=now - timedelta(days=2))
    running = await create_scratch(live, LATEST_TENANT_VERSION)
    # A schema of the tenant's role that no restore named: never dropped by guesswork.
    other = f"t_{tenant.slug}_kept"
    await platform(
        f"CREATE SCHEMA {quote_ident(other)} AUTHORIZATION {quote_ident(tenant.role_name)}"
    )

    assert await drop_retired(now, tenant=live) == [crashed.schema_name]
    assert await drop_retired(now, tenant=live) == []
    assert set(await schemas_of(tenant)) == {
        tenant.schema_name,
        live.schema_name,
        running.schema_name,
        other,
    }

    later = now + timedelta(days=3, minutes=1)
    assert await drop_retired(later, tenant=live) == [tenant.schema_name, running.schema_name]
    assert await schemas_of(tenant) == sorted([live.schema_name, other])
    assert (
        await platform("SELECT * FROM public.retired_schema WHERE tenant_id = $1", tenant.id) == []
    )
    # The live schema is never dropped, however it is asked for.
    assert await drop_scratch(live) is False
    assert await drop_retired(later + timedelta(days=365), tenant=live) == []
    assert await in_tenant(live, "SELECT count(*) FROM customer") == CUSTOMERS
    assert await registry(tenant) == live


async def test_dropping_leaves_other_tenants_alone(filled: Filled, world: World) -> None:
    alpha = world["alpha"].ref
    alpha_before = await checksums(alpha)
    alpha_scratch = await create_scratch(alpha, LATEST_TENANT_VERSION)
    try:
        far = datetime.now(UTC) + timedelta(days=30)
        assert await drop_retired(far, tenant=filled.ref) == []
        assert alpha_scratch.schema_name in await schemas_of(alpha)
    finally:
        assert await drop_scratch(alpha_scratch)
    assert await schemas_of(alpha) == [alpha.schema_name]
    assert await checksums(alpha) == alpha_before


async def test_people_and_apps_of_after_the_backup_are_kept(
    filled: Filled, api: Api, settings: Settings
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    newcomer = await create_user(
        tenant, "newcomer@restore-late.test", ["manager"], department="新部门"
    )
    promoted = filled.people["sales2"]
    await create_user(tenant, promoted.email, ["manager"], department="销售部/二组")
    late = await create_app(tenant, "late", ["customers:read"])

    await restore(tenant, backup.snapshot, backup.read, keep_days=7)

    live = await registry(tenant)
    members = await in_tenant(
        live,
        "SELECT jsonb_object_agg(identity_id, jsonb_build_object('roles', roles,"
        " 'department', department_id, 'active', active)) FROM member",
    )
    members = orjson.loads(members)
    # Made a member after the backup: a member still, without the department the
    # backup does not have; promoted after it: with the roles the platform gives.
    assert members[str(newcomer.identity_id)] == {
        "roles": ["manager"],
        "department": None,
        "active": True,
    }
    assert members[str(promoted.identity_id)]["roles"] == ["manager"]
    assert await in_tenant(live, "SELECT active FROM partner_app WHERE id = $1", late.app_id)
    token = issue_token(
        newcomer.identity_id, tenant.slug, secret=settings.secret_key, ttl_seconds=600
    ).token
    assert (await api.post(tenant.slug, token, COUNT)).ok()["customers"] is not None

    async def owned_by_newcomer() -> str:
        admin = caller_for(live, filled.people["admin"])
        values = {"kind": "ENTERPRISE", "name": "新来的客户", "owner_id": newcomer.identity_id}
        return await create_customer(admin, values)

    assert await run_in_tenant(live, owned_by_newcomer)


async def test_requests_running_through_a_restore_succeed_or_fail_never_vanish(
    filled: Filled, api: Api, store: CheckpointStore
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    head_before = orjson.loads(await in_tenant(tenant, HEAD))["seq"]
    stop = asyncio.Event()
    outcomes: list[tuple[int, tuple[str, ...]]] = []

    async def keep_asking() -> None:
        while not stop.is_set():
            reply = await api.post(tenant.slug, filled.tokens["admin"], COUNT)
            outcomes.append((reply.status, tuple(reply.codes)))

    askers = [asyncio.create_task(keep_asking()) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        await restore(tenant, backup.snapshot, backup.read, keep_days=7)
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*askers)

    live = await registry(tenant)
    answered = outcomes.count((200, ()))
    assert answered > 0 and answered + outcomes.count((500, ("INTERNAL",))) == len(outcomes)
    # Every answered request has its event in the restored chain. A request that began in
    # the old schema and would have recorded itself there after the swap failed instead
    # (the head moved): the old chain ends where the two part.
    parted = await in_tenant(
        live,
        "SELECT max(n.seq) FROM audit_event n"
        f" JOIN {quote_ident(tenant.schema_name)}.audit_event o USING (seq) WHERE n.hash = o.hash",
    )
    assert await in_tenant(tenant, "SELECT max(seq) FROM audit_event") == parted
    assert orjson.loads(await in_tenant(live, HEAD))["seq"] - head_before == answered
    report = await verify_tenant(live, store)
    assert report.ok, report.broken
