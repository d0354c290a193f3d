"""Sharing and borrowing (共享 / 借阅): every state of a request, and what it shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dangan.audit.actions import ActionLog
from dangan.services.sharing import expire_shares
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import World, missing_id

SHARE_FIELDS = "id status grantee { kind id } classes level purpose validUntil requestedBy decidedBy comment customerCount events { event actorId reason }"
REQUEST = (
    f"mutation($input: RequestShareInput!) {{ requestShare(input: $input) {{ {SHARE_FIELDS} }} }}"
)
APPROVE = (
    f"mutation($id: ID!, $c: String!) {{ approveShare(id: $id, comment: $c) {{ {SHARE_FIELDS} }} }}"
)
REJECT = (
    f"mutation($id: ID!, $c: String!) {{ rejectShare(id: $id, comment: $c) {{ {SHARE_FIELDS} }} }}"
)
REVOKE = (
    f"mutation($id: ID!, $r: String!) {{ revokeShare(id: $id, reason: $r) {{ {SHARE_FIELDS} }} }}"
)
DETAIL = "query($id: ID!) { customer(id: $id) { id name phone email idNumber annualRevenue } }"
MINE = "{ customers(first: 100) { totalCount nodes { id } } }"


def _until(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def _request(customer_id: str, grantee: dict, **extra) -> dict:
    return {
        "input": {
            "customerIds": [customer_id],
            "grantee": grantee,
            "classes": ["contact"],
            "purpose": "covering for a colleague on leave",
            "until": _until(days=7),
            **extra,
        }
    }


def _owned_by(world: World, slug: str, who: str) -> dict:
    owner = world[slug].people[who].identity_id
    return next(c for c in world[slug].customers if c["owner_id"] == owner)


async def test_share_lifecycle_request_approve_see_revoke(api: Api, world: World) -> None:
    t = world["alpha"]
    customer = _owned_by(world, "alpha", "sales")
    cid = str(customer["id"])
    sales2 = {"kind": "USER", "id": t.people["sales2"].identity_id}
    before = (await api.post("alpha", t.tokens["sales2"], MINE)).ok()["customers"]["totalCount"]

    pending = (await api.post("alpha", t.tokens["sales"], REQUEST, _request(cid, sales2))).ok()[
        "requestShare"
    ]
    assert pending["status"] == "PENDING" and pending["customerCount"] == 1
    assert [e["event"] for e in pending["events"]] == ["requested"]
    assert (await api.post("alpha", t.tokens["sales2"], DETAIL, {"id": cid})).codes == ["NOT_FOUND"]

    own = await api.post("alpha", t.tokens["sales"], APPROVE, {"id": pending["id"], "c": "ok"})
    assert own.codes == ["FORBIDDEN"] and "own request" in own.errors[0]["message"]
    grantee = await api.post("alpha", t.tokens["sales2"], APPROVE, {"id": pending["id"], "c": "ok"})
    assert grantee.codes == ["FORBIDDEN"]

    approved = (
        await api.post(
            "alpha",
            t.tokens["manager"],
            APPROVE,
            {"id": pending["id"], "c": "approved for the audit"},
        )
    ).ok()["approveShare"]
    assert approved["status"] == "APPROVED"
    assert approved["decidedBy"] == t.people["manager"].identity_id
    assert approved["comment"] == "approved for the audit"

    seen = await api.post("alpha", t.tokens["sales2"], DETAIL, {"id": cid})
    shown = seen.ok()["customer"]
    phone = customer["phone"]
    assert shown["name"] == customer["name"], "basic facts come with any share"
    assert shown["phone"] == phone[:3] + "****" + phone[-4:], "contact shared masked"
    assert shown["idNumber"] is None and shown["annualRevenue"] is None
    assert set(seen.body["extensions"]["redacted"]) == {
        "customer.idNumber",
        "customer.annualRevenue",
    }
    assert phone not in seen.text
    after = (await api.post("alpha", t.tokens["sales2"], MINE)).ok()["customers"]["totalCount"]
    assert after == before + 1

    again = await api.post("alpha", t.tokens["admin"], APPROVE, {"id": pending["id"], "c": "twice"})
    assert again.codes == ["CONFLICT"]

    revoked = (
        await api.post(
            "alpha", t.tokens["sales"], REVOKE, {"id": pending["id"], "r": "colleague is back"}
        )
    ).ok()["revokeShare"]
    assert revoked["status"] == "REVOKED"
    assert [(e["event"], e["actorId"]) for e in revoked["events"]] == [
        ("requested", t.people["sales"].identity_id),
        ("approved", t.people["manager"].identity_id),
        ("revoked", t.people["sales"].identity_id),
    ]
    assert (await api.post("alpha", t.tokens["sales2"], DETAIL, {"id": cid})).codes == ["NOT_FOUND"]


async def test_rejected_share_shows_nothing(api: Api, world: World) -> None:
    t = world["beta"]
    cid = str(_owned_by(world, "beta", "sales")["id"])
    grantee = {"kind": "USER", "id": t.people["sales2"].identity_id}
    pending = (await api.post("beta", t.tokens["sales"], REQUEST, _request(cid, grantee))).ok()[
        "requestShare"
    ]
    rejected = (
        await api.post(
            "beta", t.tokens["admin"], REJECT, {"id": pending["id"], "c": "no business need"}
        )
    ).ok()["rejectShare"]
    assert rejected["status"] == "REJECTED"
    assert (await api.post("beta", t.tokens["sales2"], DETAIL, {"id": cid})).codes == ["NOT_FOUND"]
    late = await api.post(
        "beta", t.tokens["admin"], APPROVE, {"id": pending["id"], "c": "changed my mind"}
    )
    assert late.codes == ["CONFLICT"]


async def test_grant_counts_until_its_end_then_expires(
    api: Api, world: World, settings: Settings
) -> None:
    t = world["gamma"]
    cid = str(_owned_by(world, "gamma", "sales")["id"])
    variables = _request(cid, {"kind": "DEPARTMENT", "id": t.people["sales2"].department_id})
    variables["input"]["until"] = _until(seconds=3)
    pending = (await api.post("gamma", t.tokens["sales"], REQUEST, variables)).ok()["requestShare"]
    (
        await api.post(
            "gamma", t.tokens["manager"], APPROVE, {"id": pending["id"], "c": "short loan"}
        )
    ).ok()
    assert (await api.post("gamma", t.tokens["sales2"], DETAIL, {"id": cid})).ok()
    await asyncio.sleep(3.2)
    assert (await api.post("gamma", t.tokens["sales2"], DETAIL, {"id": cid})).codes == ["NOT_FOUND"]
    log = ActionLog(settings.secret_key, "job")
    expired = await run_in_tenant(t.ref, lambda: expire_shares(log))
    assert expired >= 1
    status = await run_in_tenant(
        t.ref,
        lambda: raw_connection().fetchval(
            "SELECT status FROM share_request WHERE id = $1::uuid", pending["id"]
        ),
    )
    assert status == "expired"
    listed = (
        await api.post(
            "gamma",
            t.tokens["sales"],
            "{ shareRequests(status: EXPIRED) { id events { event reason } } }",
        )
    ).ok()
    mine = next(r for r in listed["shareRequests"] if r["id"] == pending["id"])
    assert mine["events"][-1] == {"event": "expired", "reason": "end date reached"}


async def test_bad_share_requests(api: Api, world: World) -> None:
    t = world["alpha"]
    token = t.tokens["sales"]
    mine = str(_owned_by(world, "alpha", "sales")["id"])
    theirs = str(_owned_by(world, "alpha", "sales2")["id"])
    foreign = str(world["beta"].customers[0]["id"])
    user = {"kind": "USER", "id": t.people["sales2"].identity_id}

    async def codes_and_field(variables: dict) -> tuple[list, str | None]:
        reply = await api.post("alpha", token, REQUEST, variables)
        return reply.codes, (reply.errors[0]["extensions"].get("field") if reply.errors else None)

    invisible = await api.post("alpha", token, REQUEST, _request(theirs, user))
    missing = await api.post("alpha", token, REQUEST, _request(missing_id(), user))
    other_tenant = await api.post("alpha", token, REQUEST, _request(foreign, user))
    assert invisible.codes == missing.codes == other_tenant.codes == ["NOT_FOUND"]
    assert (
        invisible.errors[0]["message"]
        == missing.errors[0]["message"]
        == other_tenant.errors[0]["message"]
    )

    assert await codes_and_field(
        _request(mine, {"kind": "USER", "id": world["beta"].people["sales"].identity_id})
    ) == (["BAD_USER_INPUT"], "grantee")
    assert await codes_and_field(_request(mine, {"kind": "DEPARTMENT", "id": 99999})) == (
        ["BAD_USER_INPUT"],
        "grantee",
    )
    assert await codes_and_field(_request(mine, user, classes=["salary"])) == (
        ["BAD_USER_INPUT"],
        "classes",
    )
    assert await codes_and_field(_request(mine, user, purpose="  ")) == (
        ["BAD_USER_INPUT"],
        "purpose",
    )
    assert await codes_and_field(_request(mine, user, until=_until(days=-1))) == (
        ["BAD_USER_INPUT"],
        "until",
    )
    assert await codes_and_field(_request(mine, user, until=_until(days=400))) == (
        ["BAD_USER_INPUT"],
        "until",
    )
    both = _request(mine, user, where=[{"field": "tier", "value": "KEY"}])
    assert (await codes_and_field(both))[0] == ["BAD_USER_INPUT"]
    app = await api.post("alpha", t.keys["reader"], REQUEST, _request(mine, user))
    assert app.codes == ["FORBIDDEN"]
    unknown = await api.post("alpha", t.tokens["admin"], APPROVE, {"id": missing_id(), "c": "x"})
    assert unknown.codes == ["NOT_FOUND"]


async def test_share_requests_by_conditions_and_visibility_of_requests(
    api: Api, world: World
) -> None:
    t = world["beta"]
    variables = {
        "input": {
            "where": [{"field": "ownerId", "value": str(t.people["sales"].identity_id)}],
            "grantee": {"kind": "USER", "id": t.people["sales2"].identity_id},
            "classes": ["contact", "notes"],
            "purpose": "handover",
            "until": _until(days=1),
        }
    }
    made = (await api.post("beta", t.tokens["sales"], REQUEST, variables)).ok()["requestShare"]
    owned = sum(1 for c in t.customers if c["owner_id"] == t.people["sales"].identity_id)
    assert made["customerCount"] >= owned
    listing = "{ shareRequests(status: PENDING) { id } }"
    for who, sees in (
        ("sales", True),
        ("sales2", True),
        ("manager", True),
        ("admin", True),
        ("auditor", False),
    ):
        ids = [
            r["id"] for r in (await api.post("beta", t.tokens[who], listing)).ok()["shareRequests"]
        ]
        assert (made["id"] in ids) is sees, who
    elsewhere = await api.post(
        "gamma", world["gamma"].tokens["admin"], APPROVE, {"id": made["id"], "c": "x"}
    )
    assert elsewhere.codes == ["NOT_FOUND"]


async def test_partner_app_sees_only_consenting_customers_shared_with_it(
    api: Api, world: World
) -> None:
    t = world["gamma"]
    customer = _owned_by(world, "gamma", "sales")
    cid = str(customer["id"])
    app_id = (await api.post("gamma", t.keys["reader"], "{ me { id } }")).ok()["me"]["id"]
    variables = _request(
        cid,
        {"kind": "PARTNER_APP", "id": app_id},
        classes=["basic", "contact", "identity"],
        level="FULL",
    )
    made = (await api.post("gamma", t.tokens["sales"], REQUEST, variables)).ok()["requestShare"]
    (
        await api.post(
            "gamma", t.tokens["admin"], APPROVE, {"id": made["id"], "c": "partner onboarding"}
        )
    ).ok()
    assert (await api.post("gamma", t.keys["reader"], DETAIL, {"id": cid})).codes == [
        "NOT_FOUND"
    ], "no consent yet"

    version = (
        await api.post(
            "gamma",
            t.tokens["admin"],
            "query($id: ID!) { customer(id: $id) { version } }",
            {"id": cid},
        )
    ).ok()["customer"]["version"]
    update = "mutation($id: ID!, $v: Int!) { updateCustomer(id: $id, version: $v, input: {consentsToSharing: true}) { id } }"
    (await api.post("gamma", t.tokens["admin"], update, {"id": cid, "v": version})).ok()

    seen = await api.post("gamma", t.keys["reader"], DETAIL, {"id": cid})
    shown = seen.ok()["customer"]
    assert shown["name"] == customer["name"] and shown["phone"] == customer["phone"]
    assert shown["idNumber"] is None, "identity never goes to partner apps, whatever the grant"
    assert "customer.idNumber" in seen.body["extensions"]["redacted"]
    listed = (await api.post("gamma", t.keys["reader"], MINE)).ok()["customers"]
    assert [n["id"] for n in listed["nodes"]] == [cid]

    # Leave the shared world as it was: other modules model it without live shares.
    (await api.post("gamma", t.tokens["admin"], REVOKE, {"id": made["id"], "r": "test over"})).ok()
    (
        await api.post(
            "gamma",
            t.tokens["admin"],
            update.replace("true", "false"),
            {"id": cid, "v": version + 1},
        )
    ).ok()
    assert (await api.post("gamma", t.keys["reader"], MINE)).ok()["customers"]["totalCount"] == 0
