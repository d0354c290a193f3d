"""The index of which events returned which customer (``audit_access``): filled after
the requests by a catch-up job, while the lookups stay exact at every moment."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.audit.access_index import _index_next_batch, catch_up
from dangan.audit.actions import record_action
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.audit import index_audit_access
from dangan.workers.settings import build_worker
from tests.audit.events import head_of, post
from tests.audit.reading import access_log, audit_events
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import World

LIST = "query IndexList { customers(first: 50) { nodes { id phone } } }"
OPEN = "query IndexOpen($id: ID!) { customer(id: $id) { id name } }"


async def _fetch(tenant: TenantRef, sql: str, *args: Any) -> list[Any]:
    async def read() -> list[Any]:
        return await raw_connection().fetch(sql, *args)

    return await run_in_tenant(tenant, read)


async def returned_by_scan(tenant: TenantRef, customer: str) -> list[int]:
    """The events that returned ``customer``, found the slow way: every event unpacked."""
    rows = await _fetch(
        tenant,
        "SELECT seq FROM audit_event e WHERE $1::uuid IN"
        " (SELECT audit_event_customers(e.customers)) ORDER BY seq DESC",
        uuid.UUID(customer),
    )
    return [row["seq"] for row in rows]


async def indexed_for(tenant: TenantRef, customer: str) -> list[int]:
    rows = await _fetch(
        tenant,
        "SELECT seq FROM audit_access WHERE customer_id = $1 ORDER BY seq DESC",
        uuid.UUID(customer),
    )
    return [row["seq"] for row in rows]


async def indexed_up_to(tenant: TenantRef) -> int:
    rows = await _fetch(tenant, "SELECT indexed_seq FROM audit_access_progress")
    return int(rows[0]["indexed_seq"])


async def logged(api: Api, credential: str, customer: str, tenant: str = "alpha") -> list[int]:
    """Every event of the customer's access log, page after page."""
    seqs: list[int] = []
    after = None
    while True:
        reply, _ = await access_log(
            api, credential, customer, first=200, after=after, tenant=tenant
        )
        page = reply.ok()["customerAccessLog"]
        seqs += [event["seq"] for event in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seqs
        after = page["pageInfo"]["endCursor"]


async def test_the_lookup_is_exact_before_during_and_after_the_catch_up(
    api: Api, world: World
) -> None:
    tenant, auditor = world["alpha"].ref, world["alpha"].tokens["auditor"]
    customer = str(world["alpha"].customers[0]["id"])  # owned by sales
    await catch_up(tenant)
    sales = world["alpha"].tokens["sales"]
    for query, variables in ((LIST, None), (OPEN, {"id": customer}), (LIST, None)):
        reply, _ = await post(api, "alpha", sales, query, variables)
        reply.ok()
    expected = await returned_by_scan(tenant, customer)
    newest = expected[:3]
    assert len(newest) == 3 and min(newest) > await indexed_up_to(tenant)
    assert not set(newest) & set(await indexed_for(tenant, customer)), "nothing on the way"

    before = await logged(api, auditor, customer)
    await run_in_tenant(tenant, lambda: _index_next_batch(1))  # part of the way
    during = await logged(api, auditor, customer)
    await catch_up(tenant)
    after = await logged(api, auditor, customer)

    assert before == during == after == expected
    assert await indexed_for(tenant, customer) == expected
    filtered, _ = await audit_events(api, auditor, {"customerId": customer}, first=3)
    assert [e["seq"] for e in filtered.ok()["auditEvents"]["nodes"]] == newest


async def test_bytes_across_two_packed_ids_are_not_a_customer(
    api: Api, world: World, settings: Settings
) -> None:
    tenant = world["gamma"].ref
    first, second = uuid.uuid4(), uuid.uuid4()
    straddling = str(uuid.UUID(bytes=first.bytes[8:] + second.bytes[:8]))

    async def act() -> int:
        return await record_action(
            settings.secret_key, "export.run", origin="job", customers=[first, second]
        )

    seq = await run_in_tenant(tenant, act)
    auditor = world["gamma"].tokens["auditor"]
    assert seq > await indexed_up_to(tenant)

    for _ in ("before the catch-up", "after it"):
        assert await logged(api, auditor, straddling, "gamma") == []
        assert await logged(api, auditor, str(second), "gamma") == [seq]
        await catch_up(tenant)


async def test_the_catch_up_goes_in_batches_and_a_rerun_finds_nothing(
    world: World, settings: Settings
) -> None:
    tenant = world["beta"].ref
    await catch_up(tenant)
    customers = [uuid.uuid4() for _ in range(5)]
    for customer in customers:

        async def act(customer: uuid.UUID = customer) -> int:
            return await record_action(
                settings.secret_key, "import.run", origin="job", customers=[customer, customer]
            )

        await run_in_tenant(tenant, act)

    done = await catch_up(tenant, batch_events=2)
    again = await catch_up(tenant, batch_events=2)

    head, _ = await head_of(tenant)
    assert (done.events, done.indexed_seq) == (5, head)
    assert (again.events, again.indexed_seq) == (0, head)
    for customer in customers:
        assert len(await indexed_for(tenant, str(customer))) == 1


async def test_the_cron_indexes_every_tenant_every_minute(
    world: World, settings: Settings, endpoints: Any
) -> None:
    first = await index_audit_access({})
    again = await index_audit_access({})

    assert {"alpha", "beta", "gamma"} <= first.keys()
    assert all(count == 0 for count in again.values())
    for slug in ("alpha", "beta", "gamma"):
        head, _ = await head_of(world[slug].ref)
        assert await indexed_up_to(world[slug].ref) == head
    worker = build_worker(settings, endpoints, connect_database=False)
    (job,) = [job for job in worker.cron_jobs if job.coroutine is index_audit_access]
    assert job.name == f"cron:{settings.redis_namespace}:index_audit_access" and job.unique
    assert job.minute == set(range(60))


@pytest.fixture
async def scratch(settings: Settings) -> AsyncIterator[tuple[TenantRef, str]]:
    tenant = await create_tenant("auditidx", "Audit Index Ltd")
    auditor = await create_user(tenant, "auditor@auditidx.test", ["auditor"])
    token = issue_token(
        auditor.identity_id, "auditidx", secret=settings.secret_key, ttl_seconds=600
    ).token
    yield tenant, token
    await drop_tenant("auditidx")


async def test_an_event_removed_takes_its_index_rows_along(
    api: Api, scratch: tuple[TenantRef, str], settings: Settings
) -> None:
    """Retention may remove old events (breaking the chain on purpose, recorded apart):
    their index rows go with them, and the lookup never names a missing event."""
    tenant, token = scratch
    customer = uuid.uuid4()

    async def act() -> int:
        return await record_action(
            settings.secret_key, "import.run", origin="job", customers=[customer]
        )

    seq = await run_in_tenant(tenant, act)
    await catch_up(tenant)
    assert await indexed_for(tenant, str(customer)) == [seq]

    await _fetch(tenant, "DELETE FROM audit_event WHERE seq = $1 RETURNING seq", seq)

    assert await indexed_for(tenant, str(customer)) == []
    assert await logged(api, token, str(customer), "auditidx") == []


async def test_a_chain_rewound_below_the_mark_is_read_exactly_and_reindexed(
    api: Api, scratch: tuple[TenantRef, str], settings: Settings
) -> None:
    """A restore (or tampering, which verify reports) may rewind the chain below the
    index's mark and number new events as old ones were: readers then scan every event,
    and the next catch-up rebuilds the index."""
    tenant, token = scratch
    kept, dropped, added = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def act(customer: uuid.UUID) -> int:
        return await record_action(
            settings.secret_key, "import.run", origin="job", customers=[customer]
        )

    first = await run_in_tenant(tenant, lambda: act(kept))
    second = await run_in_tenant(tenant, lambda: act(dropped))
    await catch_up(tenant)
    await _fetch(
        tenant,
        "WITH gone AS (DELETE FROM audit_event WHERE seq = $1 RETURNING seq)"
        " UPDATE audit_head SET last_seq = $2,"
        " last_hash = (SELECT hash FROM audit_event WHERE seq = $2) RETURNING last_seq",
        second,
        first,
    )
    renumbered = await run_in_tenant(tenant, lambda: act(added))
    assert renumbered == second

    for _ in ("before the catch-up", "after it"):
        assert await logged(api, token, str(added), "auditidx") == [second]
        assert await logged(api, token, str(kept), "auditidx") == [first]
        assert await logged(api, token, str(dropped), "auditidx") == []
        await catch_up(tenant)

    assert await indexed_for(tenant, str(added)) == [second]
    assert await indexed_up_to(tenant) == (await head_of(tenant))[0]  # the reads' events too
