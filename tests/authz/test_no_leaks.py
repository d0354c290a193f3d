"""Property: whatever a caller asks — any fields, list or detail, filters (with real
secret values as the filter values), search, ordering — no value they may not see in
full ever appears in the response, and no customer they may not see is returned or
counted.

How this runs: ``@given`` sits directly on an ``async def`` test. pytest-asyncio
recognises Hypothesis tests and runs each generated example's coroutine on the session
event loop (the loop the session fixtures — app, database pool — live on), so the test
body can simply ``await`` the API. The examples are drawn inside the body with
``st.data()`` because the values worth filtering with (phone numbers, ID numbers,
revenues of customers the caller may not see) are only known once the database has
been read. Session- and package-scoped fixtures are shared by all examples, which is
what the suppressed ``function_scoped_fixture`` health check is about.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.authz.model import (
    CALLERS,
    GQL_COLUMNS,
    SECRET_COLUMNS,
    Snapshot,
    forbidden_values,
    snapshot,
)
from tests.authz.samples import Samples
from tests.support.api import Api
from tests.support.world import TENANTS, World, missing_id

FILTER_FIELDS = [g for g in GQL_COLUMNS if g not in ("tags",)] + ["salary", "ownerId"]
OPS = ["EQ", "NE", "IN", "CONTAINS", "GT", "GTE", "LT", "LTE", "IS_NULL"]
ORDER_FIELDS = ["name", "createdAt", "tier", "annualRevenue", "phone"]

_snapshots: dict[str, Snapshot] = {}


async def snapshots(world: World) -> dict[str, Snapshot]:
    """Read once for all examples (nothing changes the data while this test runs)."""
    if not _snapshots:
        for slug in TENANTS:
            _snapshots[slug] = await snapshot(world[slug])
    return _snapshots


def document(path: str, fields: list[str]) -> str:
    selection = " ".join(["id", *fields, "owner { id email }"])
    if path == "detail":
        return f"query($id: ID!) {{ customer(id: $id) {{ {selection} }} }}"
    body = f"edges {{ node {{ {selection} }} }}" if path == "edges" else f"nodes {{ {selection} }}"
    return (
        "query($first: Int!, $where: [CustomerCondition!], $search: String,"
        " $order: CustomerOrder) { customers(first: $first, where: $where, search: $search,"
        f" orderBy: $order) {{ totalCount {body} }} }}"
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_no_caller_ever_receives_a_value_they_may_not_see_in_full(
    api: Api, world: World, samples: Samples, data: st.DataObject
) -> None:
    snaps = await snapshots(world)
    slug = data.draw(st.sampled_from(TENANTS), label="tenant")
    key = data.draw(st.sampled_from(CALLERS), label="caller")
    own = snaps[slug]
    who = own.who(key)
    fields = data.draw(
        st.lists(st.sampled_from(list(GQL_COLUMNS)), min_size=1, max_size=8, unique=True),
        label="fields",
    )
    path = data.draw(st.sampled_from(["edges", "nodes", "detail"]), label="path")
    rows = [row for snap in snaps.values() for row in snap.rows]
    secrets = sorted({str(row[c]) for row in rows for c in SECRET_COLUMNS if row[c] is not None})
    values = st.one_of(st.sampled_from(secrets), st.sampled_from(["0", "138", "A", "浙江"]))
    variables: dict[str, Any]
    if path == "detail":
        target = data.draw(
            st.one_of(st.sampled_from([str(r["id"]) for r in rows]), st.just(missing_id())),
            label="id",
        )
        variables = {"id": target}
    else:
        condition = st.fixed_dictionaries(
            {"field": st.sampled_from(FILTER_FIELDS), "op": st.sampled_from(OPS)},
            optional={"value": values, "values": st.lists(values, min_size=1, max_size=3)},
        )
        variables = {"first": 50}
        where = data.draw(st.lists(condition, max_size=2), label="where")
        if where:
            variables["where"] = where
        search = data.draw(st.none() | st.sampled_from(["授权", "客户", "样板", "科技", "sales"]))
        if search:
            variables["search"] = search
        order = data.draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "field": st.sampled_from(ORDER_FIELDS),
                    "direction": st.sampled_from(["ASC", "DESC"]),
                }
            ),
            label="order",
        )
        if order:
            variables["order"] = order

    reply = await api.post(slug, own.credential(key), document(path, fields), variables)
    assert reply.status == 200, reply.text
    event(f"{path}: {reply.codes[0] if reply.codes else 'data'}")
    assert all(code in ("BAD_USER_INPUT", "NOT_FOUND") for code in reply.codes), reply.body
    leaks = {
        text: where
        for text, where in forbidden_values(who, snaps.values(), own).items()
        if text in reply.text
    }
    assert not leaks, (key, slug, variables, leaks)

    visible = {str(row["id"]) for row in own.visible_rows(who)}
    if path == "detail":
        if variables["id"] in visible:
            assert reply.data["customer"]["id"] == variables["id"]
        else:
            assert reply.codes == ["NOT_FOUND"]
    elif reply.data is not None:
        page = reply.data["customers"]
        nodes = [e["node"] for e in page["edges"]] if path == "edges" else page["nodes"]
        assert {node["id"] for node in nodes} <= visible
        assert len(nodes) == min(page["totalCount"], 50) and page["totalCount"] <= len(visible)


async def test_the_forbidden_values_are_the_ones_the_table_hides(
    world: World, samples: Samples
) -> None:
    """The oracle of the property itself: for a salesperson, their own customer's revenue
    and rating are forbidden, its phone is not; a colleague's phone is."""
    snaps = await snapshots(world)
    alpha = snaps["alpha"]
    sales = alpha.who("sales")
    forbidden = forbidden_values(sales, snaps.values(), alpha)
    own = alpha.row(samples.specimen["alpha"])
    other = next(
        r for r in alpha.rows if r["owner_id"] == world["alpha"].people["sales2"].identity_id
    )
    assert str(own["annual_revenue"]) in forbidden and '"AAA"' in forbidden
    assert own["remarks"] not in forbidden and own["phone"] not in forbidden
    assert other["phone"] in forbidden
    beta_row = snaps["beta"].rows[0]
    assert beta_row["phone"] in forbidden or beta_row["phone"] == own["phone"]
