"""Events beyond executed requests: requests refused before they ran (400, 401, 403,
405), what each operation did (its root fields, the actor's roles), and the events jobs
and commands append with ``record_action`` — all in the same verifiable chain."""

from __future__ import annotations

import uuid

from dangan.audit.actions import record_action
from dangan.audit.redaction import audit_key, keyed_hash
from dangan.audit.verify import verify_chain
from dangan.settings import Settings
from dangan.tenants.scope import run_in_tenant
from tests.audit.events import event_of, events_of, post
from tests.support.api import Api
from tests.support.world import World

LIST = "query Refusals { customers(first: 2) { nodes { id } } }"
TWO_ROOTS = """query TwoRoots { ...Roots me { __typename } }
fragment Roots on Query { customers(first: 1) { nodes { id } } __typename }"""


async def test_an_event_lists_its_root_fields_and_the_actors_roles(api: Api, world: World) -> None:
    reply, request_id = await post(api, "alpha", world["alpha"].tokens["manager"], TWO_ROOTS)
    assert reply.status == 200, reply.body

    event = await event_of(world["alpha"].ref, request_id)

    assert event["actions"] == ["customers", "me"]
    assert event["actor_roles"] == ["manager"]


async def test_a_bad_credential_is_recorded_as_an_anonymous_refusal(api: Api, world: World) -> None:
    reply, request_id = await post(api, "alpha", "not-a-token", LIST)
    assert reply.status == 401

    event = await event_of(world["alpha"].ref, request_id)

    assert (event["operation_type"], event["outcome"]) == ("refused", "error")
    assert event["error_codes"] == ["UNAUTHENTICATED"]
    assert (event["actor_kind"], event["actor_id"]) == ("anonymous", None)
    assert event["client_address"] == "10.1.2.3"
    assert event["customers"] == [] and event["actions"] == []


async def test_another_tenants_credential_is_recorded_where_it_was_tried(
    api: Api, world: World
) -> None:
    reply, request_id = await post(api, "alpha", world["beta"].tokens["admin"], LIST)
    assert reply.status == 403

    assert (await event_of(world["alpha"].ref, request_id))["error_codes"] == ["FORBIDDEN"]
    assert await events_of(world["beta"].ref, request_id) == []


async def test_an_invalid_document_is_recorded_with_its_caller_and_redacted_variables(
    api: Api, world: World
) -> None:
    query = "query Bad($phone: String) { customers(first: 1) { nodes { nope } } }"
    reply, request_id = await post(
        api, "alpha", world["alpha"].tokens["sales"], query, {"phone": "13800001234"}
    )
    assert reply.status == 400

    event = await event_of(world["alpha"].ref, request_id)

    sales = world["alpha"].people["sales"]
    assert (event["actor_kind"], event["actor_id"]) == ("user", sales.identity_id)
    assert event["operation_type"] == "refused" and event["error_codes"] == ["BAD_USER_INPUT"]
    assert event["operation_name"] == "Bad" and event["actions"] == ["customers"]
    assert "13800001234" not in str(event["variables"])


async def test_a_request_for_an_unknown_tenant_writes_no_event(api: Api, world: World) -> None:
    reply, request_id = await post(api, "nosuchtenant", world["alpha"].tokens["admin"], LIST)
    assert reply.status == 404

    for slug in ("alpha", "beta", "gamma"):
        assert await events_of(world[slug].ref, request_id) == []


async def test_a_job_records_its_action_in_the_chain(world: World, settings: Settings) -> None:
    tenant = world["beta"].ref
    customer = uuid.uuid4()

    async def act() -> int:
        return await record_action(
            settings.secret_key,
            "export.run",
            origin="job",
            details={"rows": 3, "phone": "13900001111"},
            customers=[customer],
            request_id="job-test-1",
        )

    seq = await run_in_tenant(tenant, act)
    event = await event_of(tenant, "job-test-1")

    assert event["seq"] == seq
    assert (event["operation_type"], event["operation_name"]) == ("job", "export.run")
    assert (event["actor_kind"], event["actor_id"], event["actor_roles"]) == ("system", None, [])
    assert event["actions"] == ["export.run"] and event["customers"] == [customer]
    key = audit_key(settings.secret_key)
    assert event["variables"] == {"rows": 3, "phone": keyed_hash(key, "13900001111")}
    report = await verify_chain(tenant)
    assert report.ok and report.events >= seq
