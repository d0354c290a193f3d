"""Jobs record what they did in the tenant's chain: an import and an export (as the
person who asked, through the real worker), a failed export, a rating run, a
checkpoint and share expiry (as ``system``) — and the chain still verifies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from dangan.audit.checkpoints import checkpoint_key, open_checkpoint_store
from dangan.audit.verify import verify_tenant
from dangan.devstack import Endpoints
from dangan.services.customers import create_customer
from dangan.services.people import Person, caller_for, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.audit import audit_checkpoints
from dangan.workers.jobs import expire_share_grants
from dangan.workers.rating import rate_tenant_customers
from tests.audit.events import event_of, events_of
from tests.support.api import Api
from tests.support.archive import START_EXPORT, START_IMPORT, csv_file, forget_jobs, run_jobs
from tests.support.tenants import drop_tenant

SLUG = "audit_jobs"
IDS = "{ customers(first: 100) { nodes { id } } }"


@dataclass
class Scratch:
    ref: TenantRef
    people: dict[str, Person]
    customers: list[str]
    settings: Settings

    def token(self, who: str) -> str:
        identity = self.people[who].identity_id
        return issue_token(identity, SLUG, secret=self.settings.secret_key, ttl_seconds=600).token

    async def sql(self, query: str, *params: Any) -> list[Any]:
        return await run_in_tenant(self.ref, lambda: raw_connection().fetch(query, *params))

    async def events(self, action: str) -> list[dict[str, Any]]:
        rows = await self.sql(
            "SELECT request_id FROM audit_event WHERE $1 = ANY(actions) ORDER BY seq", action
        )
        return [event for row in rows for event in await events_of(self.ref, row["request_id"])]

    async def verified(self, endpoints: Endpoints) -> bool:
        store = await open_checkpoint_store(s3_client(endpoints), self.settings)
        return (await verify_tenant(self.ref, store)).ok


@pytest.fixture(scope="module")
async def scratch(world: Any, settings: Settings) -> AsyncIterator[Scratch]:
    """An admin and two salespeople; two customers each for the latter."""
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Audit Jobs Ltd")
    people = {
        who: await create_user(ref, f"{who}@audit-jobs.test", [role], department=department)
        for who, role, department in (
            ("admin", "admin", None),
            ("sales", "sales", "销售部/一组"),
            ("sales2", "sales", "销售部/二组"),
        )
    }
    admin = caller_for(ref, people["admin"])
    customers = []
    for index, owner in enumerate(["sales", "sales", "sales2", "sales2"]):
        values = {"kind": "ENTERPRISE", "name": f"审计任务{index}"}
        values["owner_id"] = people[owner].identity_id

        async def make(values: dict[str, Any] = values) -> str:
            return await create_customer(admin, values, allow_possible_duplicate=True)

        customers.append(await run_in_tenant(ref, make))
    yield Scratch(ref, people, customers, settings)
    await drop_tenant(SLUG)


async def test_an_import_is_recorded_with_its_counts_as_its_requester(
    api: Api, app: Any, scratch: Scratch, settings: Settings, endpoints: Endpoints
) -> None:
    rows = [
        ["kind", "name", "phone"],
        ["ENTERPRISE", "审计导入1", ""],
        ["ENTERPRISE", "审计导入2", "12345"],  # a bad phone: not valid
        ["ENTERPRISE", "审计导入3", ""],
    ]
    variables = {
        "input": {
            "format": "CSV",
            "filename": "audit.csv",
            "contentBase64": csv_file(rows),
            "mode": "IMPORT_VALID_ROWS",
        }
    }
    try:
        started = await api.post(SLUG, scratch.token("admin"), START_IMPORT, variables)
        job_id = started.ok()["startCustomerImport"]["id"]
        await run_jobs(settings, endpoints)
    finally:
        await forget_jobs(settings, endpoints)

    event = await event_of(scratch.ref, job_id)

    admin = scratch.people["admin"]
    assert (event["operation_type"], event["actions"]) == ("job", ["import.run"])
    assert (event["actor_kind"], event["actor_id"], event["actor_roles"]) == (
        "user",
        admin.identity_id,
        ["admin"],
    )
    details = event["variables"]
    assert details["job"] == job_id and details["mode"] == "IMPORT_VALID_ROWS"
    assert (details["rows"], details["valid"], details["written"], details["refused"]) == (
        3,
        2,
        2,
        0,
    )
    assert event["outcome"] == "ok"
    assert await scratch.verified(endpoints)


async def test_an_export_is_recorded_with_the_customers_that_went_out(
    api: Api, app: Any, scratch: Scratch, settings: Settings, endpoints: Endpoints
) -> None:
    sales = scratch.token("sales")
    seen = {n["id"] for n in (await api.post(SLUG, sales, IDS)).ok()["customers"]["nodes"]}
    assert seen and seen < set(scratch.customers)  # not the whole tenant
    try:
        started = await api.post(SLUG, sales, START_EXPORT, {"input": {"format": "CSV"}})
        job_id = started.ok()["startCustomerExport"]["id"]
        await run_jobs(settings, endpoints)
    finally:
        await forget_jobs(settings, endpoints)

    event = await event_of(scratch.ref, job_id)

    assert event["actions"] == ["export.run"] and event["outcome"] == "ok"
    assert event["actor_id"] == scratch.people["sales"].identity_id
    assert {str(c) for c in event["customers"]} == seen
    assert event["variables"]["rows"] == len(seen) and event["variables"]["format"] == "CSV"
    assert await scratch.verified(endpoints)


async def test_a_failed_export_is_recorded_with_its_error(
    api: Api, app: Any, scratch: Scratch, settings: Settings, endpoints: Endpoints
) -> None:
    leaver = await create_user(
        scratch.ref, "leaver@audit-jobs.test", ["sales"], department="销售部"
    )
    token = issue_token(leaver.identity_id, SLUG, secret=settings.secret_key, ttl_seconds=600)
    started = await api.post(SLUG, token.token, START_EXPORT, {"input": {"format": "CSV"}})
    job_id = started.ok()["startCustomerExport"]["id"]

    async with in_transaction() as conn:  # the account is disabled before the job runs
        await conn.execute_query(
            "UPDATE public.identity SET status = 'disabled' WHERE id = $1", [leaver.identity_id]
        )
    try:
        await run_jobs(settings, endpoints)
    finally:
        await forget_jobs(settings, endpoints)

    event = await event_of(scratch.ref, job_id)

    assert event["actions"] == ["export.run"]
    assert (event["outcome"], event["error_codes"]) == ("error", ["UNAUTHENTICATED"])
    assert (event["actor_kind"], event["variables"]["requestedBy"]) == (
        "system",
        leaver.identity_id,
    )
    assert event["customers"] == []
    assert await scratch.verified(endpoints)


async def test_a_rating_run_is_recorded_as_system(
    scratch: Scratch, settings: Settings, endpoints: Endpoints, redis: Redis
) -> None:
    ctx = {"settings": settings, "redis": redis, "job_id": f"{settings.redis_namespace}:r"}

    (live,) = await scratch.sql("SELECT count(*) AS n FROM customer WHERE status <> 'MERGED'")

    result = await rate_tenant_customers(ctx, SLUG, "nightly")

    (event, *_) = reversed(await scratch.events("rating.run"))
    assert (event["operation_type"], event["actor_kind"]) == ("job", "system")
    assert event["variables"] == {"trigger": "nightly", "criteriaVersion": None, "rated": live["n"]}
    assert result["rated"] == live["n"] >= 4
    assert await scratch.verified(endpoints)


async def test_a_checkpoint_is_announced_by_an_event_it_covers(
    scratch: Scratch, settings: Settings, endpoints: Endpoints
) -> None:
    store = await open_checkpoint_store(s3_client(endpoints), settings)

    written = await audit_checkpoints({"audit_checkpoints": store, "settings": settings})

    (event, *_) = reversed(await scratch.events("audit.checkpoint"))
    assert written[SLUG] == event["seq"]
    assert (event["operation_type"], event["actor_kind"]) == ("job", "system")
    assert event["variables"] == {"bucket": settings.audit_bucket}
    assert await store.objects.stat(checkpoint_key(SLUG, event["seq"])) is not None
    assert await scratch.verified(endpoints)


async def test_share_expiry_is_recorded_with_the_customers_it_concerned(
    scratch: Scratch, settings: Settings, endpoints: Endpoints
) -> None:
    sales2 = scratch.people["sales2"]
    customer = uuid.UUID(scratch.customers[0])
    rows = await scratch.sql(
        "INSERT INTO share_request (grantee_user_id, classes, level, purpose, valid_until,"
        " status, requested_by) VALUES ($1, '{basic}', 'full', 'loan', now(), 'approved', $2)"
        " RETURNING id",
        sales2.identity_id,
        scratch.people["sales"].identity_id,
    )
    request = rows[0]["id"]
    await scratch.sql(
        "INSERT INTO share_request_customer (request_id, customer_id) VALUES ($1, $2)",
        request,
        customer,
    )

    expired = await expire_share_grants({"settings": settings})

    assert expired[SLUG] == 1
    (event,) = await scratch.events("share.expire")
    assert (event["operation_type"], event["actor_kind"]) == ("job", "system")
    assert event["variables"] == {"expired": 1, "shareRequests": [str(request)]}
    assert event["customers"] == [customer]
    assert SLUG not in await expire_share_grants({"settings": settings})  # nothing more
    assert len(await scratch.events("share.expire")) == 1
    assert await scratch.verified(endpoints)
