"""Import and export jobs through the real arq worker: approval of large exports,
re-runs that change nothing, progress, a job the row of which isn't committed yet."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.worker import Retry
from redis.asyncio import Redis

from dangan.audit.actions import ActionLog
from dangan.devstack import Endpoints
from dangan.services.archive_jobs import queue_job_id
from dangan.services.archive_runs import claim
from dangan.services.customers import create_customer
from dangan.services.identifiers import make_id_number
from dangan.services.imports import run_import, start_customer_import
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import raw_connection, run_in_tenant
from dangan.workers import progress
from dangan.workers.archive import export_customers
from tests.audit.events import events_of
from tests.support.api import Api
from tests.support.archive import JOB, START_EXPORT, csv_file, forget_jobs, job, run_jobs
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


# --- Imports: what changed between the check and the write, and overlapping runs ---

IMPORTED = "写入检查"
AUDIT_SECRET = "import-tests"  # keys the hashes of sensitive details: none here


@pytest.fixture
async def importing(
    app: Any, world: World, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[Any]:
    """Start an import as alpha's admin and claim it, as the CLI does (the app makes the
    bucket); drops its rows."""
    alpha = world["alpha"]
    objects = ObjectStore(s3_client(endpoints), settings.s3_bucket)

    async def start(rows: list[list[str]], mode: str, allow: bool = False) -> dict[str, Any]:
        async def record() -> dict[str, Any]:
            return await start_customer_import(
                alpha.caller("admin"),
                format="CSV",
                filename="t.csv",
                content_base64=csv_file(rows),
                mode=mode,
                allow_possible_duplicates=allow,
                objects=objects,
                queue=None,
                settings=settings,
            )

        started = await run_in_tenant(alpha.ref, record)
        claimed = await run_in_tenant(alpha.ref, lambda: claim(started["id"], "IMPORT"))
        assert claimed is not None
        return claimed

    yield start, objects

    async def drop() -> None:
        await raw_connection().execute("DELETE FROM customer WHERE name LIKE $1", f"{IMPORTED}%")

    await run_in_tenant(alpha.ref, drop)


async def _run(
    world: World, job_row: dict[str, Any], objects: ObjectStore, between: Any = None
) -> dict[str, Any]:
    """Run the import one row a batch; ``between`` runs after the first batch."""

    async def progress(done: int, total: int, stage: str) -> None:
        if stage == "writing" and done == 1 and between is not None:
            await run_in_tenant(world["alpha"].ref, between)

    return await run_import(
        world["alpha"].caller("admin"),
        world["alpha"].ref,
        job_row,
        objects,
        batch_size=1,
        progress=progress,
        log=ActionLog(AUDIT_SECRET, "job"),
    )


async def _names(world: World) -> list[str]:
    async def names() -> list[str]:
        rows = await raw_connection().fetch(
            "SELECT name FROM customer WHERE name LIKE $1 ORDER BY name", f"{IMPORTED}%"
        )
        return [row["name"] for row in rows]

    return await run_in_tenant(world["alpha"].ref, names)


async def test_a_row_that_became_a_duplicate_before_its_batch_is_refused_not_written(
    world: World, importing: Any
) -> None:
    start, objects = importing
    twin = make_id_number(random.Random(), region="11")
    rows = [
        ["kind", "name", "idNumber"],
        ["ENTERPRISE", f"{IMPORTED}1", ""],
        ["INDIVIDUAL", f"{IMPORTED}2", twin],
    ]
    claimed = await start(rows, "IMPORT_VALID_ROWS", allow=True)
    made: list[Any] = []

    async def someone_enters_it() -> None:
        values = {"kind": "INDIVIDUAL", "name": f"{IMPORTED}甲", "id_number": twin}
        admin = world["alpha"].caller("admin")
        made.append(await create_customer(admin, values, allow_possible_duplicate=True))

    result = await _run(world, claimed, objects, someone_enters_it)
    assert result["imported"] == 1
    assert result["refusedRows"] == [
        {
            "line": 3,
            "field": "idNumber",
            "message": f"a customer with the same idNumber exists: {made[0]}",
            "candidates": [str(made[0])],
        }
    ]
    assert await _names(world) == [f"{IMPORTED}1", f"{IMPORTED}甲"]


async def test_a_row_that_no_longer_passes_its_checks_is_refused_and_the_rest_written(
    world: World, settings: Settings, importing: Any
) -> None:
    start, objects = importing
    alpha = world["alpha"]
    owner = await create_user(alpha.ref, "import-owner@alpha.test", ["sales"], department="销售部")
    rows = [
        ["kind", "name", "ownerId"],
        ["ENTERPRISE", f"{IMPORTED}1", ""],
        ["ENTERPRISE", f"{IMPORTED}2", str(owner.identity_id)],
        ["ENTERPRISE", f"{IMPORTED}3", ""],
    ]
    claimed = await start(rows, "IMPORT_VALID_ROWS", allow=True)

    async def set_active(active: bool) -> None:
        await raw_connection().execute(
            "UPDATE member SET active = $2 WHERE identity_id = $1", owner.identity_id, active
        )

    try:
        result = await _run(world, claimed, objects, lambda: set_active(False))
    finally:
        await run_in_tenant(alpha.ref, lambda: set_active(True))
    assert result["imported"] == 2
    assert [(r["line"], r["field"]) for r in result["refusedRows"]] == [(3, "ownerId")]
    assert "no longer passes its checks" in result["refusedRows"][0]["message"]
    assert await _names(world) == [f"{IMPORTED}1", f"{IMPORTED}3"]

    async def status() -> Any:
        return await raw_connection().fetchval(
            "SELECT status FROM archive_job WHERE id = $1", claimed["id"]
        )

    assert await run_in_tenant(alpha.ref, status) == "SUCCEEDED"


async def test_two_overlapping_runs_of_one_import_write_each_row_once(
    world: World, importing: Any
) -> None:
    start, objects = importing
    rows = [["kind", "name"], ["ENTERPRISE", f"{IMPORTED}一"], ["ENTERPRISE", f"{IMPORTED}二"]]
    claimed = await start(rows, "IMPORT_VALID_ROWS", allow=True)
    # A second delivery claimed the job before the first one checked it: both start
    # from nothing. The second runs after the first has written everything.
    first = await _run(world, claimed, objects)
    second = await _run(world, claimed, objects)
    assert first["imported"] == 2
    assert await _names(world) == [f"{IMPORTED}一", f"{IMPORTED}二"]

    async def stored() -> Any:
        return await raw_connection().fetchrow(
            "SELECT status, done, result FROM archive_job WHERE id = $1", claimed["id"]
        )

    row = await run_in_tenant(world["alpha"].ref, stored)
    assert row["status"] == "SUCCEEDED" and row["done"] == 2
    assert '"imported": 2' in row["result"]
    # One audit event for the job, by the run that finished it.
    (event,) = await events_of(world["alpha"].ref, str(claimed["id"]))
    assert event["actions"] == ["import.run"] and event["variables"]["written"] == 2
    assert second["imported"] == 0  # it skipped every batch, leaving the first run's result
