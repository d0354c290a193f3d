"""Reading the audit trail: who saw which customers, which fields, when — for auditors
(and administrators) under the default policy; FORBIDDEN for everyone else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from dangan.audit.actions import record_action
from dangan.settings import Settings
from dangan.tenants.scope import run_in_tenant
from tests.audit.events import event_of, post
from tests.audit.reading import ACCESS_LOG, EVENTS, EXPORT, access_log, audit_events, levels
from tests.support.api import Api
from tests.support.world import World, missing_id

LIST = """query SalesList($first: Int!) {
  customers(first: $first) { nodes { id name phone idNumber creditRating } }
}"""
OPEN = "query SalesOpen($id: ID!) { customer(id: $id) { id name phone idNumber } }"


def owned_by(world: World, who: str, tenant: str = "alpha") -> set[str]:
    owner = world[tenant].people[who].identity_id
    return {str(c["id"]) for c in world[tenant].customers if c["owner_id"] == owner}


def sales_filter(world: World, **more: object) -> dict[str, object]:
    sales = world["alpha"].people["sales"]
    return {"actor": {"kind": "USER", "id": sales.identity_id}, **more}


async def test_the_auditor_sees_what_sales_saw_and_how(api: Api, world: World) -> None:
    """The story: a salesperson lists their customers and opens one; the auditor finds
    both requests, exactly those customers, and each field's level."""
    sales = world["alpha"].tokens["sales"]
    listed, list_id = await post(api, "alpha", sales, LIST, {"first": 50})
    opened_id = listed.ok()["customers"]["nodes"][0]["id"]
    opened, open_id = await post(api, "alpha", sales, OPEN, {"id": opened_id})
    opened.ok()

    reply, _ = await audit_events(api, world["alpha"].tokens["auditor"], sales_filter(world))

    found = reply.ok()["auditEvents"]["nodes"]
    assert [e["requestId"] for e in found[:2]] == [open_id, list_id]  # newest first
    open_event, list_event = found[:2]
    sales_member = world["alpha"].people["sales"]
    assert list_event["actor"] == {
        "kind": "USER",
        "id": sales_member.identity_id,
        "name": "alpha-sales",
        "roles": ["sales"],
    }
    assert (list_event["operationType"], list_event["operationName"]) == ("QUERY", "SalesList")
    assert list_event["actions"] == ["customers"] and open_event["actions"] == ["customer"]
    assert list_event["clientAddress"] == "10.1.2.3" and list_event["outcome"] == "OK"
    assert list_event["variables"] == {"first": 50}
    assert set(list_event["customerIds"]) == owned_by(world, "sales")
    assert list_event["customerCount"] == len(owned_by(world, "sales"))
    assert levels(list_event) == {
        "name": ["FULL"],
        "phone": ["FULL"],
        "idNumber": ["MASKED"],
        "creditRating": ["HIDDEN"],
    }
    assert open_event["customerIds"] == [opened_id]
    assert levels(open_event) == {"name": ["FULL"], "phone": ["FULL"], "idNumber": ["MASKED"]}

    log, _ = await access_log(api, world["alpha"].tokens["auditor"], opened_id)

    entries = log.ok()["customerAccessLog"]["nodes"]
    assert [e["requestId"] for e in entries[:2]] == [open_id, list_id]
    newest, _ = await access_log(api, world["alpha"].tokens["auditor"], opened_id, first=1)
    cursor = newest.ok()["customerAccessLog"]["pageInfo"]["endCursor"]
    older, _ = await access_log(api, world["alpha"].tokens["auditor"], opened_id, after=cursor)
    assert [e["requestId"] for e in older.ok()["customerAccessLog"]["nodes"][:1]] == [list_id]
    assert entries[0]["actor"]["name"] == "alpha-sales"
    assert levels(entries[0])["idNumber"] == ["MASKED"]
    assert all(opened_id in e["customerIds"] for e in entries)


async def test_the_auditors_own_reading_is_recorded(api: Api, world: World) -> None:
    auditor = world["alpha"].tokens["auditor"]
    customer = str(world["alpha"].customers[1]["id"])
    reply, request_id = await audit_events(api, auditor, sales_filter(world), first=3)
    reply.ok()
    logged, log_id = await access_log(api, auditor, customer)
    logged.ok()

    event = await event_of(world["alpha"].ref, request_id)
    log_event = await event_of(world["alpha"].ref, log_id)

    auditor_member = world["alpha"].people["auditor"]
    assert (event["actor_id"], event["actor_roles"]) == (auditor_member.identity_id, ["auditor"])
    assert event["actions"] == ["auditEvents"] and event["operation_name"] == "ReadAudit"
    assert event["variables"]["filter"] == sales_filter(world)
    assert log_event["actions"] == ["customerAccessLog"]
    assert log_event["variables"]["customer"] == customer
    again, _ = await audit_events(api, auditor, {"action": "customerAccessLog"}, first=1)
    assert again.ok()["auditEvents"]["nodes"][0]["requestId"] == log_id


async def test_filters_by_action_outcome_operation_and_period(api: Api, world: World) -> None:
    sales, auditor = world["alpha"].tokens["sales"], world["alpha"].tokens["auditor"]
    started = datetime.now(UTC)
    missing, missing_request = await post(api, "alpha", sales, OPEN, {"id": missing_id()})
    assert missing.codes == ["NOT_FOUND"]
    _, list_request = await post(api, "alpha", sales, LIST, {"first": 5})

    async def request_ids(**conditions: object) -> list[str]:
        reply, _ = await audit_events(api, auditor, sales_filter(world, **conditions), first=200)
        return [e["requestId"] for e in reply.ok()["auditEvents"]["nodes"]]

    since = started.isoformat()
    assert await request_ids(**{"from": since}) == [list_request, missing_request]
    assert await request_ids(**{"from": since, "action": "customer"}) == [missing_request]
    assert await request_ids(**{"from": since, "outcome": "ERROR"}) == [missing_request]
    assert await request_ids(**{"from": since, "outcome": "OK"}) == [list_request]
    assert await request_ids(**{"from": since, "operationType": "MUTATION"}) == []
    assert list_request not in await request_ids(to=since)
    errors, _ = await audit_events(api, auditor, {"outcome": "ERROR", "from": since})
    (event,) = [e for e in errors.ok()["auditEvents"]["nodes"] if e["requestId"] == missing_request]
    assert event["errorCodes"] == ["NOT_FOUND"] and event["customerIds"] == []
    by_name, _ = await audit_events(api, auditor, {"actor": {"name": "alpha-sales"}}, first=1)
    assert by_name.ok()["auditEvents"]["nodes"][0]["requestId"] == list_request


async def test_pages_follow_each_other_newest_first(api: Api, world: World) -> None:
    auditor = world["alpha"].tokens["auditor"]
    everything, _ = await audit_events(api, auditor, sales_filter(world), first=200)
    all_seqs = [e["seq"] for e in everything.ok()["auditEvents"]["nodes"]]
    assert len(all_seqs) >= 3 and all_seqs == sorted(all_seqs, reverse=True)

    first, _ = await audit_events(api, auditor, sales_filter(world), first=2)
    page = first.ok()["auditEvents"]
    second, _ = await audit_events(
        api, auditor, sales_filter(world), first=2, after=page["pageInfo"]["endCursor"]
    )
    following = second.ok()["auditEvents"]

    assert [e["seq"] for e in page["nodes"] + following["nodes"]] == all_seqs[:4]
    assert page["pageInfo"]["hasNextPage"] and not page["pageInfo"]["hasPreviousPage"]
    assert following["pageInfo"]["hasPreviousPage"]
    assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
    assert page["totalCount"] == len(all_seqs)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"filter": {"actor": {"id": 3}}}, "filter.actor.kind"),
        ({"filter": {"customerId": "not-an-id"}}, "filter.customerId"),
        ({"filter": {"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}}, "filter.from"),
        ({"first": 500}, "first"),
        ({"after": "bm90LWEtY3Vyc29y"}, "after"),
    ],
)
async def test_bad_filters_name_their_field(
    api: Api, world: World, variables: dict, field: str
) -> None:
    reply, _ = await post(
        api, "alpha", world["alpha"].tokens["auditor"], EVENTS, {"first": 10, **variables}
    )
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field


@pytest.mark.parametrize("who", ["sales", "sales2", "manager", "reader", "writer"])
async def test_everyone_else_is_forbidden_every_reading(api: Api, world: World, who: str) -> None:
    tw = world["alpha"]
    credential = tw.keys[who] if who in tw.keys else tw.tokens[who]
    customer = str(tw.customers[0]["id"])
    replies = [
        (await post(api, "alpha", credential, EVENTS, {"first": 5}))[0],
        (await post(api, "alpha", credential, ACCESS_LOG, {"customer": customer, "first": 5}))[0],
        (await post(api, "alpha", credential, EXPORT, {"filter": None}))[0],
    ]

    for reply in replies:
        assert reply.status == 200 and reply.codes == ["FORBIDDEN"], reply.body
        assert reply.data is None
        assert "alpha-sales" not in reply.text and customer not in reply.text


async def test_administrators_may_read_it_too(api: Api, world: World) -> None:
    reply, _ = await audit_events(api, world["alpha"].tokens["admin"], sales_filter(world), first=1)
    assert reply.ok()["auditEvents"]["nodes"][0]["actor"]["name"] == "alpha-sales"


async def test_another_tenants_trail_stays_out_of_sight(api: Api, world: World) -> None:
    beta_customer = str(world["beta"].customers[0]["id"])
    listed, beta_request = await post(
        api, "beta", world["beta"].tokens["admin"], LIST, {"first": 5}
    )
    listed.ok()
    alpha_auditor = world["alpha"].tokens["auditor"]

    everything, _ = await audit_events(api, alpha_auditor, first=200)
    by_customer, _ = await audit_events(api, alpha_auditor, {"customerId": beta_customer})
    log, _ = await access_log(api, alpha_auditor, beta_customer)
    in_beta, _ = await audit_events(api, world["beta"].tokens["auditor"], tenant="beta", first=200)
    with_alpha_token, _ = await audit_events(api, alpha_auditor, tenant="beta")

    nodes = everything.ok()["auditEvents"]["nodes"]
    assert beta_request not in {e["requestId"] for e in nodes}
    assert not any((e["actor"]["name"] or "").startswith("beta-") for e in nodes)
    assert not any(beta_customer in e["customerIds"] for e in nodes)
    assert by_customer.ok()["auditEvents"]["nodes"] == []
    assert log.ok()["customerAccessLog"]["nodes"] == []
    assert beta_request in {e["requestId"] for e in in_beta.ok()["auditEvents"]["nodes"]}
    assert with_alpha_token.status == 403 and with_alpha_token.data is None


async def test_a_customer_never_seen_has_an_empty_log(api: Api, world: World) -> None:
    reply, _ = await access_log(api, world["alpha"].tokens["auditor"], str(uuid.uuid4()))
    assert reply.ok()["customerAccessLog"] == {
        "nodes": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "totalCount": 0,
    }


BIG = """query BigEvent($filter: AuditEventFilter) {
  auditEvents(filter: $filter, first: 1) {
    nodes { seq customerCount head: customerIds rest: customerIds(first: 500, offset: 1000) }
  }
}"""


async def test_an_event_of_many_customers_gives_them_page_by_page(
    api: Api, world: World, settings: Settings
) -> None:
    customers = [uuid.uuid4() for _ in range(1200)]

    async def act() -> int:
        return await record_action(
            settings.secret_key, "export.run", origin="job", customers=customers
        )

    seq = await run_in_tenant(world["gamma"].ref, act)

    reply, _ = await post(
        api, "gamma", world["gamma"].tokens["auditor"], BIG, {"filter": {"action": "export.run"}}
    )

    (event,) = reply.ok()["auditEvents"]["nodes"]
    assert (event["seq"], event["customerCount"]) == (seq, 1200)
    assert event["head"] == [str(c) for c in customers[:1000]]
    assert event["rest"] == [str(c) for c in customers[1000:]]
