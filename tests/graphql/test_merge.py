"""Merging duplicate customers and undoing it: records move (and exactly those come
back), empty fields are filled (and emptied again), statuses and history follow."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.services.identifiers import make_id_number, make_mobile
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.world import TENANTS, TenantWorld, World, missing_id

PREFIX = "合并测试"  # every customer these tests create is named like this
PURPOSE = "merge-tests"
MERGE = """
mutation($survivor: ID!, $others: [ID!]!, $reason: String!) {
  mergeCustomers(survivorId: $survivor, otherIds: $others, reason: $reason) {
    id mergedIds mergedAt undoUntil undoneAt survivor { id name email } mergedBy { displayName }
  }
}"""
UNDO = """
mutation($id: ID!, $reason: String!) {
  undoMerge(mergeId: $id, reason: $reason) { id undoneAt survivor { id email } }
}"""
DETAIL = "query($id: ID!) { customer(id: $id) { id name } }"
LIST = "query { customers(first: 1000) { nodes { id } } }"
RECORD_TABLES = ("contact_person", "customer_need", "field_reveal")


async def _sql(tenant: TenantWorld, query: str, *args: Any) -> Any:
    async def work() -> Any:
        return await raw_connection().fetch(query, *args)

    return await run_in_tenant(tenant.ref, work)


@pytest.fixture
async def cleanup(world: World) -> AsyncIterator[None]:
    yield
    for slug in TENANTS:
        await _sql(world[slug], "DELETE FROM share_request WHERE purpose = $1", PURPOSE)
        await _sql(
            world[slug], "UPDATE customer SET merged_into = NULL WHERE name LIKE $1", f"{PREFIX}%"
        )
        await _sql(world[slug], "DELETE FROM customer WHERE name LIKE $1", f"{PREFIX}%")


async def new_customer(tenant: TenantWorld, label: str, **extra: Any) -> str:
    """A customer (inserted directly: merge tests make duplicates on purpose) with one
    record of each kind these tests follow."""
    rng = random.Random(label)
    rows = await _sql(
        tenant,
        "INSERT INTO customer (kind, name, phone, id_number, email, remarks, owner_id)"
        " VALUES ('INDIVIDUAL', $1, $2, $3, $4, $5, $6) RETURNING id::text AS id",
        f"{PREFIX}{label}",
        make_mobile(rng),
        make_id_number(rng, region="33"),
        extra.get("email"),
        extra.get("remarks"),
        tenant.people["sales"].identity_id,
    )
    cid = rows[0]["id"]
    admin = tenant.people["admin"].identity_id
    await _sql(tenant, "INSERT INTO contact_person (customer_id, name) VALUES ($1, $2)", cid, label)
    await _sql(
        tenant,
        "INSERT INTO customer_need (customer_id, kind, description) VALUES ($1, 'INTENTION', $2)",
        cid,
        label,
    )
    await _sql(
        tenant,
        "INSERT INTO field_reveal (customer_id, field, actor_kind, actor_id, reason)"
        " VALUES ($1, 'phone', 'user', $2, 'test')",
        cid,
        admin,
    )
    return str(cid)


async def records_of(tenant: TenantWorld, cid: str) -> dict[str, set[str]]:
    found = {}
    for table in RECORD_TABLES:
        rows = await _sql(tenant, f"SELECT id::text AS id FROM {table} WHERE customer_id = $1", cid)
        found[table] = {row["id"] for row in rows}
    return found


async def share_both(tenant: TenantWorld, *ids: str) -> str:
    rows = await _sql(
        tenant,
        "INSERT INTO share_request (grantee_user_id, classes, level, purpose, valid_until,"
        " status, requested_by) VALUES ($1, '{basic}', 'full', $2, now() + interval '1 day',"
        " 'pending', $1) RETURNING id::text AS id",
        tenant.people["sales2"].identity_id,
        PURPOSE,
    )
    for cid in ids:
        await _sql(
            tenant,
            "INSERT INTO share_request_customer VALUES ($1::uuid, $2::uuid)",
            rows[0]["id"],
            cid,
        )
    return str(rows[0]["id"])


async def merge(
    api: Api, tenant: TenantWorld, survivor: str, others: list[str], who: str = "admin"
) -> Response:
    variables = {"survivor": survivor, "others": others, "reason": "same person, entered twice"}
    return await api.post(tenant.slug, tenant.tokens[who], MERGE, variables)


async def undo(api: Api, tenant: TenantWorld, merge_id: str, who: str = "admin") -> Response:
    variables = {"id": merge_id, "reason": "they were two people after all"}
    return await api.post(tenant.slug, tenant.tokens[who], UNDO, variables)


def error(reply: Response) -> tuple[str, str | None]:
    assert len(reply.errors) == 1, reply.body
    extensions = reply.errors[0]["extensions"]
    return extensions["code"], extensions.get("field")


async def test_merge_moves_records_fills_fields_and_undo_restores_exactly(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    survivor = await new_customer(alpha, "张三")
    other = await new_customer(alpha, "张三(重复)", email="zhang.san@example.com", remarks="老客户")
    second = await new_customer(alpha, "张三(又一个)", email="other@example.com")
    both = await share_both(alpha, survivor, other)
    only_other = await share_both(alpha, other)
    before = {cid: await records_of(alpha, cid) for cid in (survivor, other, second)}

    merged = (await merge(api, alpha, survivor, [other, second])).ok()["mergeCustomers"]
    assert merged["mergedIds"] == [other, second] and merged["undoneAt"] is None
    assert merged["survivor"] == {
        "id": survivor,
        "name": f"{PREFIX}张三",
        "email": "zhang.san@example.com",
    }
    assert merged["mergedBy"] == {"displayName": "alpha-admin"}

    after = await records_of(alpha, survivor)
    for table in RECORD_TABLES:
        assert (
            after[table] == before[survivor][table] | before[other][table] | before[second][table]
        )
        assert (await records_of(alpha, other))[table] == set()
    statuses = await _sql(
        alpha,
        "SELECT id::text AS id, status, merged_into::text AS into, email, remarks FROM customer"
        " WHERE id = ANY($1::uuid[])",
        [survivor, other, second],
    )
    by_id = {row["id"]: row for row in statuses}
    assert by_id[other]["status"] == by_id[second]["status"] == "MERGED"
    assert by_id[other]["into"] == by_id[second]["into"] == survivor
    assert (by_id[survivor]["email"], by_id[survivor]["remarks"]) == (
        "zhang.san@example.com",
        "老客户",
    )
    pairs = await _sql(
        alpha,
        "SELECT request_id::text AS r, customer_id::text AS c FROM share_request_customer"
        " WHERE request_id = ANY($1::uuid[])",
        [both, only_other],
    )
    assert {(p["r"], p["c"]) for p in pairs} == {(both, survivor), (only_other, survivor)}
    history = await _sql(
        alpha,
        "SELECT customer_id::text AS c, action, reason, record_id::text AS m FROM customer_change"
        " WHERE record_id = $1::uuid",
        merged["id"],
    )
    assert {(h["c"], h["action"]) for h in history} == {
        (survivor, "merge"),
        (other, "merge"),
        (second, "merge"),
    }
    filled = await _sql(
        alpha,
        "SELECT f.field, f.new_value FROM customer_change_field f JOIN customer_change c"
        " ON c.id = f.change_id WHERE c.customer_id = $1::uuid AND c.action = 'merge'",
        survivor,
    )
    assert {(f["field"], f["new_value"]) for f in filled} == {
        ("email", "zhang.san@example.com"),
        ("remarks", "老客户"),
    }
    listed = (await api.post("alpha", alpha.tokens["admin"], LIST)).ok()["customers"]["nodes"]
    assert other not in {n["id"] for n in listed} and survivor in {n["id"] for n in listed}
    gone = await api.post("alpha", alpha.tokens["admin"], DETAIL, {"id": other})
    assert gone.codes == ["NOT_FOUND"]

    # Added to the survivor after the merge: stays with it when the merge is undone.
    await _sql(alpha, "INSERT INTO contact_person (customer_id, name) VALUES ($1, 'new')", survivor)
    undone = (await undo(api, alpha, merged["id"])).ok()["undoMerge"]
    assert undone["undoneAt"] is not None and undone["survivor"]["email"] is None
    for cid in (other, second):
        assert await records_of(alpha, cid) == before[cid]
    back = await records_of(alpha, survivor)
    assert back["customer_need"] == before[survivor]["customer_need"]
    assert len(back["contact_person"] - before[survivor]["contact_person"]) == 1
    restored = await _sql(
        alpha,
        "SELECT id::text AS id, status, merged_into, email, remarks FROM customer"
        " WHERE id = ANY($1::uuid[])",
        [survivor, other, second],
    )
    by_id = {row["id"]: row for row in restored}
    assert by_id[other]["status"] == by_id[second]["status"] == "ACTIVE"
    assert by_id[other]["merged_into"] is None and by_id[other]["email"] == "zhang.san@example.com"
    assert (by_id[survivor]["email"], by_id[survivor]["remarks"]) == (None, None)
    pairs = await _sql(
        alpha,
        "SELECT request_id::text AS r, customer_id::text AS c FROM share_request_customer"
        " WHERE request_id = ANY($1::uuid[])",
        [both, only_other],
    )
    assert {(p["r"], p["c"]) for p in pairs} == {
        (both, survivor),
        (both, other),
        (only_other, other),
    }
    actions = await _sql(
        alpha, "SELECT action FROM customer_change WHERE record_id = $1::uuid", merged["id"]
    )
    assert sorted(a["action"] for a in actions) == ["merge"] * 3 + ["unmerge"] * 3
    assert error(await undo(api, alpha, merged["id"])) == ("CONFLICT", "mergeId")


async def test_undo_is_refused_after_30_days_or_once_a_filled_field_changed(
    api: Api, world: World, cleanup: None
) -> None:
    alpha = world["alpha"]
    survivor = await new_customer(alpha, "李四")
    other = await new_customer(alpha, "李四2", email="li.si@example.com")
    merged = (await merge(api, alpha, survivor, [other])).ok()["mergeCustomers"]
    await _sql(
        alpha, "UPDATE customer SET email = 'changed@example.com' WHERE id = $1::uuid", survivor
    )
    reply = await undo(api, alpha, merged["id"])
    assert error(reply) == ("CONFLICT", "email") and "email" in reply.errors[0]["message"]
    await _sql(
        alpha, "UPDATE customer SET email = 'li.si@example.com' WHERE id = $1::uuid", survivor
    )
    await _sql(
        alpha,
        "UPDATE customer_merge SET undo_until = now() - interval '1 day' WHERE id = $1::uuid",
        merged["id"],
    )
    assert error(await undo(api, alpha, merged["id"])) == ("CONFLICT", "mergeId")
    rows = await _sql(alpha, "SELECT status FROM customer WHERE id = $1::uuid", other)
    assert rows[0]["status"] == "MERGED", "a refused undo changes nothing"


@pytest.mark.parametrize("who", ["sales", "manager", "auditor"])
async def test_only_administrators_merge_and_undo(
    api: Api, world: World, who: str, cleanup: None
) -> None:
    alpha = world["alpha"]
    one, two = await new_customer(alpha, "王五"), await new_customer(alpha, "王五2")
    assert error(await merge(api, alpha, one, [two], who=who))[0] == "FORBIDDEN"
    assert error(await undo(api, alpha, missing_id(), who=who))[0] == "FORBIDDEN"
    rows = await _sql(
        alpha, "SELECT count(*) AS n FROM customer WHERE status = 'MERGED' AND id = $1::uuid", two
    )
    assert rows[0]["n"] == 0


async def test_unknown_invisible_and_other_tenants_ids_are_not_found(
    api: Api, world: World, cleanup: None
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    one = await new_customer(alpha, "赵六")
    theirs = await new_customer(beta, "赵六")
    assert error(await merge(api, alpha, one, [theirs])) == ("NOT_FOUND", "otherIds")
    assert error(await merge(api, alpha, theirs, [one])) == ("NOT_FOUND", "survivorId")
    assert error(await merge(api, alpha, one, [missing_id()])) == ("NOT_FOUND", "otherIds")
    assert error(await merge(api, alpha, "not-an-id", [one])) == ("NOT_FOUND", "survivorId")
    merged = (await merge(api, beta, theirs, [await new_customer(beta, "赵六2")])).ok()
    assert error(await undo(api, alpha, merged["mergeCustomers"]["id"])) == ("NOT_FOUND", "mergeId")
    assert error(await undo(api, alpha, "nonsense")) == ("NOT_FOUND", "mergeId")
    assert error(await undo(api, alpha, str(uuid.uuid4()))) == ("NOT_FOUND", "mergeId")


async def test_bad_merge_input_is_named(api: Api, world: World, cleanup: None) -> None:
    alpha = world["alpha"]
    one, two, three = [await new_customer(alpha, f"孙七{n}") for n in range(3)]
    assert error(await merge(api, alpha, one, [])) == ("BAD_USER_INPUT", "otherIds")
    assert error(await merge(api, alpha, one, [one])) == ("BAD_USER_INPUT", "otherIds")
    assert error(await merge(api, alpha, one, [two, two])) == ("BAD_USER_INPUT", "otherIds")
    eleven = [missing_id() for _ in range(11)]
    assert error(await merge(api, alpha, one, eleven)) == ("BAD_USER_INPUT", "otherIds")
    variables = {"survivor": one, "others": [two], "reason": "  "}
    reply = await api.post("alpha", alpha.tokens["admin"], MERGE, variables)
    assert error(reply) == ("BAD_USER_INPUT", "reason")
    (await merge(api, alpha, one, [two])).ok()
    assert error(await merge(api, alpha, three, [two])) == ("CONFLICT", "otherIds")
    assert error(await merge(api, alpha, two, [three])) == ("CONFLICT", "survivorId")


async def test_a_merge_moves_no_value_that_would_need_approval(
    api: Api, world: World, cleanup: None
) -> None:
    """Filling the survivor is a change like any other: identity and financial values
    (which need a second person to approve) stay with the merged customer, and its
    pending changes end with the merge."""
    tenant = world["gamma"]
    survivor = await new_customer(tenant, "四眼-留")
    other = await new_customer(tenant, "四眼-并", email="four.eyes@example.com")
    await _sql(tenant, "UPDATE customer SET id_number = NULL WHERE id = $1::uuid", survivor)
    await _sql(tenant, "UPDATE customer SET credit_rating = 'AAA' WHERE id = $1::uuid", other)
    await _sql(
        tenant,
        "INSERT INTO customer_change (customer_id, action, status, actor_kind, actor_id)"
        " VALUES ($1::uuid, 'update', 'PENDING', 'user', $2)",
        other,
        tenant.people["sales"].identity_id,
    )
    reply = await api.post(
        tenant.slug,
        tenant.tokens["admin"],
        MERGE,
        {"survivor": survivor, "others": [other], "reason": "同一客户"},
    )
    assert reply.ok()["mergeCustomers"]["survivor"]["email"] == "four.eyes@example.com"
    [row] = await _sql(
        tenant, "SELECT id_number, credit_rating FROM customer WHERE id = $1::uuid", survivor
    )
    assert row["id_number"] is None and row["credit_rating"] is None
    pending = await _sql(
        tenant, "SELECT status FROM customer_change WHERE customer_id = $1::uuid", other
    )
    assert "PENDING" not in {r["status"] for r in pending}


async def test_undo_is_refused_while_new_records_point_at_records_that_would_go_back(
    api: Api, world: World, cleanup: None
) -> None:
    tenant = world["beta"]
    survivor = await new_customer(tenant, "引用-留")
    other = await new_customer(tenant, "引用-并")
    merge = (
        await api.post(
            tenant.slug,
            tenant.tokens["admin"],
            MERGE,
            {"survivor": survivor, "others": [other], "reason": "同一客户"},
        )
    ).ok()["mergeCustomers"]
    [moved] = await _sql(
        tenant, "SELECT id FROM contact_person WHERE name = $1", "引用-并"
    )  # the merged customer's contact person, now the survivor's
    await _sql(
        tenant,
        "INSERT INTO communication (customer_id, channel, occurred_at, summary, contact_person_id)"
        " VALUES ($1::uuid, 'CALL', now(), '合并后的电话', $2)",
        survivor,
        moved["id"],
    )
    refused = await api.post(
        tenant.slug, tenant.tokens["admin"], UNDO, {"id": merge["id"], "reason": "撤销"}
    )
    assert refused.codes == ["CONFLICT"] and "communication" in refused.errors[0]["message"]
    [owner] = await _sql(
        tenant, "SELECT customer_id FROM contact_person WHERE id = $1", moved["id"]
    )
    assert str(owner["customer_id"]) == survivor, "nothing moved back"
