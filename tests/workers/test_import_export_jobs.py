"""Import and export jobs through the real arq worker: approval of large exports,
re-runs that change nothing, progress, a job the row of which isn't committed yet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from arq.worker import Retry
from redis.asyncio import Redis

from dangan.devstack import Endpoints
from dangan.services.archive_jobs import queue_job_id
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers import progress
from dangan.workers.archive import export_customers
from tests.support.api import Api
from tests.support.archive import JOB, START_EXPORT, forget_jobs, job, run_jobs
from tests.support.world import World

APPROVE = "mutation($id: ID!) { approveExport(id: $id) { status decidedBy } }"
REJECT = "mutation($id: ID!, $c: String!) { rejectExport(id: $id, comment: $c) { status result } }"
LIST_EXPORTS = "{ archiveJobs(kind: EXPORT, first: 100) { id } }"


@pytest.fixture
async def low_threshold(
    world: World, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[None]:
    async def set_threshold(value: str | None) -> None:
        await raw_connection().execute("DELETE FROM archive_setting")
        if value is not None:
            await raw_connection().execute(
                "INSERT INTO archive_setting VALUES ('export_approval_threshold', $1)", value
            )

    await run_in_tenant(world["beta"].ref, lambda: set_threshold("1"))
    yield
    await run_in_tenant(world["beta"].ref, lambda: set_threshold(None))
    await forget_jobs(settings, endpoints)


async def test_large_export_waits_for_someone_else_to_approve(
    api: Api,
    world: World,
    settings: Settings,
    endpoints: Endpoints,
    redis: Redis,
    low_threshold: None,
) -> None:
    beta = world["beta"]
    started = await api.post(
        "beta", beta.tokens["sales"], START_EXPORT, {"input": {"format": "CSV"}}
    )
    job_id = started.ok()["startCustomerExport"]["id"]
    assert started.ok()["startCustomerExport"]["status"] == "AWAITING_APPROVAL"
    await run_jobs(settings, endpoints)  # nothing queued: it waits
    assert (await job(api, "beta", beta.tokens["sales"], job_id))["status"] == "AWAITING_APPROVAL"
    own = await api.post("beta", beta.tokens["sales"], APPROVE, {"id": job_id})
    assert own.codes == ["FORBIDDEN"]
    colleague = await api.post("beta", beta.tokens["sales2"], APPROVE, {"id": job_id})
    assert colleague.codes == ["FORBIDDEN"]
    elsewhere = await api.post("alpha", world["alpha"].tokens["manager"], APPROVE, {"id": job_id})
    assert elsewhere.codes == ["NOT_FOUND"]
    approved = (await api.post("beta", beta.tokens["manager"], APPROVE, {"id": job_id})).ok()
    assert approved["approveExport"] == {
        "status": "QUEUED",
        "decidedBy": beta.people["manager"].identity_id,
    }
    again = await api.post("beta", beta.tokens["admin"], APPROVE, {"id": job_id})
    assert again.codes == ["CONFLICT"]
    await run_jobs(settings, endpoints)
    done = await job(api, "beta", beta.tokens["sales"], job_id)
    assert done["status"] == "SUCCEEDED" and done["result"]["rows"] == 2 and done["downloadUrl"]
    key = queue_job_id(settings.redis_namespace, job_id)
    reported = await progress.read(redis, settings.redis_namespace, key)
    assert reported is not None and reported["done"] == 2


async def test_a_manager_sees_and_decides_only_exports_from_their_department_tree(
    api: Api, world: World, settings: Settings, low_threshold: None
) -> None:
    beta = world["beta"]
    elsewhere = await create_user(
        beta.ref,
        "manager-ops@beta.test",
        ["manager"],
        display_name="beta-manager-ops",
        department="运营部",
    )
    token = issue_token(
        elsewhere.identity_id, "beta", secret=settings.secret_key, ttl_seconds=3600
    ).token
    started = await api.post(
        "beta", beta.tokens["sales"], START_EXPORT, {"input": {"format": "CSV"}}
    )
    job_id = started.ok()["startCustomerExport"]["id"]
    # A manager of another department: the same NOT_FOUND as for a missing id.
    for query, variables in (
        (JOB, {"id": job_id}),
        (APPROVE, {"id": job_id}),
        (REJECT, {"id": job_id, "c": "no"}),
    ):
        reply = await api.post("beta", token, query, variables)
        assert reply.codes == ["NOT_FOUND"], query
        assert job_id not in str(reply.errors)
    listed = (await api.post("beta", token, LIST_EXPORTS)).ok()["archiveJobs"]
    assert job_id not in [found["id"] for found in listed]
    # The requester's own manager (销售部 above 销售部/一组) sees and decides it.
    mine = (await api.post("beta", beta.tokens["manager"], LIST_EXPORTS)).ok()["archiveJobs"]
    assert job_id in [found["id"] for found in mine]
    rejected = await api.post("beta", beta.tokens["manager"], REJECT, {"id": job_id, "c": "no"})
    assert rejected.ok()["rejectExport"]["status"] == "REJECTED"
    assert (await api.post("beta", token, JOB, {"id": job_id})).codes == ["NOT_FOUND"]
    assert (await job(api, "beta", beta.tokens["manager"], job_id))["status"] == "REJECTED"
    assert (await job(api, "beta", beta.tokens["admin"], job_id))["status"] == "REJECTED"


async def test_rejected_export_never_runs(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, low_threshold: None
) -> None:
    beta = world["beta"]
    started = await api.post(
        "beta", beta.tokens["sales"], START_EXPORT, {"input": {"format": "CSV"}}
    )
    job_id = started.ok()["startCustomerExport"]["id"]
    empty = await api.post("beta", beta.tokens["admin"], REJECT, {"id": job_id, "c": " "})
    assert empty.codes == ["BAD_USER_INPUT"] and empty.errors[0]["extensions"]["field"] == "comment"
    rejected = await api.post("beta", beta.tokens["admin"], REJECT, {"id": job_id, "c": "too many"})
    assert rejected.ok()["rejectExport"] == {
        "status": "REJECTED",
        "result": {"comment": "too many"},
    }
    done = await job(api, "beta", beta.tokens["sales"], job_id)
    assert done["status"] == "REJECTED" and done["downloadUrl"] is None


async def test_a_finished_job_is_not_redone_and_a_missing_row_is_retried(
    api: Api, world: World, settings: Settings, endpoints: Endpoints
) -> None:
    alpha = world["alpha"]
    try:
        started = await api.post(
            "alpha", alpha.tokens["sales"], START_EXPORT, {"input": {"format": "CSV"}}
        )
        job_id = started.ok()["startCustomerExport"]["id"]
        await run_jobs(settings, endpoints)
        first = await job(api, "alpha", alpha.tokens["sales"], job_id)
        ctx = {"settings": settings, "redis": None, "objects": None}
        # A second delivery returns the recorded result without touching anything.
        assert await export_customers(ctx, "alpha", job_id) == first["result"]
        assert (await job(api, "alpha", alpha.tokens["sales"], job_id))["result"] == first["result"]
        with pytest.raises(Retry):
            await export_customers(ctx, "alpha", str(uuid.uuid4()))
    finally:
        await forget_jobs(settings, endpoints)
