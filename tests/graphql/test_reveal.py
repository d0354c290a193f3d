"""revealField: a masked value in full where the policy allows, with the reason kept."""

from __future__ import annotations

from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import World

REVEAL = "mutation($id: ID!, $f: String!, $r: String!) { revealField(customerId: $id, field: $f, reason: $r) { customerId field value } }"
DETAIL = "query($id: ID!) { customer(id: $id) { idNumber } }"


def _individual_owned_by(world: World, slug: str, who: str) -> dict:
    owner = world[slug].people[who].identity_id
    return next(c for c in world[slug].customers if c["owner_id"] == owner and c["id_number"])


async def test_owner_reveals_a_masked_id_number_and_the_reason_is_kept(
    api: Api, world: World
) -> None:
    t = world["alpha"]
    customer = _individual_owned_by(world, "alpha", "sales")
    cid = str(customer["id"])
    masked = (await api.post("alpha", t.tokens["sales"], DETAIL, {"id": cid})).ok()["customer"][
        "idNumber"
    ]
    assert masked != customer["id_number"] and "*" in masked
    reason = "verifying identity for contract signing"
    shown = (
        await api.post(
            "alpha", t.tokens["sales"], REVEAL, {"id": cid, "f": "idNumber", "r": reason}
        )
    ).ok()
    assert shown["revealField"]["value"] == customer["id_number"]
    kept = await run_in_tenant(
        t.ref,
        lambda: raw_connection().fetch(
            "SELECT field, actor_id, reason FROM field_reveal WHERE customer_id = $1::uuid", cid
        ),
    )
    assert [(r["field"], r["actor_id"], r["reason"]) for r in kept] == [
        ("id_number", t.people["sales"].identity_id, reason)
    ]


async def test_reveal_refusals(api: Api, world: World) -> None:
    t = world["alpha"]
    own = str(_individual_owned_by(world, "alpha", "sales")["id"])
    theirs = str(_individual_owned_by(world, "alpha", "sales2")["id"])
    reason = {"r": "a good enough reason"}
    auditor = await api.post(
        "alpha", t.tokens["auditor"], REVEAL, {"id": own, "f": "phone", **reason}
    )
    assert auditor.codes == ["FORBIDDEN"]
    hidden = await api.post(
        "alpha", t.tokens["sales"], REVEAL, {"id": own, "f": "annualRevenue", **reason}
    )
    missing = await api.post(
        "alpha", t.tokens["sales"], REVEAL, {"id": own, "f": "salary", **reason}
    )
    # Financial values could reach a salesperson through a share, so the field exists
    # for them; it just isn't theirs to reveal. A field that doesn't exist is unknown.
    assert hidden.codes == ["FORBIDDEN"]
    assert missing.codes == ["BAD_USER_INPUT"] and "unknown field" in missing.errors[0]["message"]
    invisible = await api.post(
        "alpha", t.tokens["sales"], REVEAL, {"id": theirs, "f": "idNumber", **reason}
    )
    assert invisible.codes == ["NOT_FOUND"]
    short = await api.post(
        "alpha", t.tokens["sales"], REVEAL, {"id": own, "f": "idNumber", "r": "x"}
    )
    assert short.codes == ["BAD_USER_INPUT"] and short.errors[0]["extensions"]["field"] == "reason"
    for reply in (auditor, hidden, invisible):
        assert _individual_owned_by(world, "alpha", "sales")["id_number"] not in reply.text
