"""The default policy, table-driven: every caller × every field class × every read path,
on all three tenants, against the model in tests/authz/model.py.

Paths: lists (``edges`` and ``nodes``, through a fragment), detail, nested ``owner`` and
``department``, ``where`` (EQ, NE, IN, CONTAINS, GT, IS_NULL), ``search``, ``orderBy``,
paging, ``totalCount``, and the errors of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dangan.models.archive import CUSTOMER_FIELDS
from tests.authz.model import (
    APPS,
    CALLERS,
    FULL,
    GQL_COLUMNS,
    HIDDEN,
    MASKED,
    Snapshot,
    Who,
    expected,
    filter_mode,
    matches,
    parse_value,
    snapshot,
)
from tests.authz.queries import (
    DETAIL,
    DETAIL_NAME,
    IDS,
    LIST_EDGES,
    LIST_NODES,
    LIST_NODES_SOME,
    SOME_FIELDS,
)
from tests.authz.samples import SAMPLE, SPECIMEN, Samples
from tests.support.api import Api, Response
from tests.support.world import TENANTS, World, missing_id

MATRIX = [(slug, key) for slug in TENANTS for key in CALLERS]
MATRIX_IDS = [f"{slug}-{key}" for slug, key in MATRIX]
# The writer app (customers:write without customers:read) can't list at all: see
# test_an_app_that_sees_no_field_gets_an_empty_list_not_an_error.
LISTERS = [(slug, key) for slug, key in MATRIX if key != "writer"]
LISTER_IDS = [f"{slug}-{key}" for slug, key in LISTERS]
NOWHERE = "salary"  # a field no customer has


def redacted(reply: Response) -> list[str]:
    return sorted((reply.body.get("extensions") or {}).get("redacted") or [])


def check_customer(
    who: Who,
    row: dict[str, Any],
    node: dict[str, Any],
    prefix: str,
    hidden: list[str],
    fields: Sequence[str] = tuple(GQL_COLUMNS),
) -> None:
    """Every selected field of one customer as the policy says; the response paths of
    the hidden ones are appended to ``hidden``."""
    for gql in fields:
        column = GQL_COLUMNS[gql]
        found, value = expected(who, row, column)
        where = f"{who.key} {prefix}.{gql} ({row['name']})"
        if found == HIDDEN:
            assert node[gql] is None, where
            hidden.append(f"{prefix}.{gql}")
            continue
        rule = CUSTOMER_FIELDS[column].mask
        if found == MASKED and row[column] is None and rule in ("amount", "text"):
            # The masked form of an empty amount or remark: see test_masks.py (a bug for
            # amounts); the samples have every such field filled, so they check the rest.
            continue
        assert node[gql] == value, where


async def test_the_samples_are_where_the_tests_need_them(world: World, samples: Samples) -> None:
    """Guard: the manager's tree holds the sales samples and not the auditor's."""
    for slug in TENANTS:
        snap = await snapshot(world[slug])
        manager = snap.who("manager")
        ours = [snap.row(i) for i in samples.ids[slug]]
        auditor_id = world[slug].people["auditor"].identity_id
        assert len(ours) == 9
        for row in ours:
            assert all(row[c] is not None for c in ("phone", "email", "address", "wechat"))
            assert all(row[c] is not None for c in ("credit_rating", "annual_revenue", "remarks"))
            assert snap.visible(manager, row) is (row["owner_id"] != auditor_id)
        assert snap.grants == 0


@pytest.mark.parametrize(("slug", "key"), LISTERS, ids=LISTER_IDS)
async def test_lists_show_each_field_in_full_masked_or_hidden(
    api: Api, world: World, samples: Samples, slug: str, key: str
) -> None:
    snap = await snapshot(world[slug])
    who = snap.who(key)
    rows = snap.visible_rows(who)
    for document, container in ((LIST_EDGES, "edges"), (LIST_NODES_SOME, "nodes")):
        # A page just big enough: the SQL's cost estimate grows with `first` (see
        # test_decisions.py, the JIT).
        first = len(snap.rows) + 1
        reply = await api.post(slug, snap.credential(key), document, {"first": first})
        page = reply.ok()["customers"]
        nodes = page["nodes"] if container == "nodes" else [e["node"] for e in page["edges"]]
        assert [node["id"] for node in nodes] == [str(row["id"]) for row in rows], key
        assert page["totalCount"] == len(rows)
        hidden: list[str] = []
        for index, (node, row) in enumerate(zip(nodes, rows, strict=True)):
            prefix = (
                f"customers.edges.{index}.node"
                if container == "edges"
                else f"customers.nodes.{index}"
            )
            fields = tuple(GQL_COLUMNS) if container == "edges" else SOME_FIELDS
            check_customer(who, row, node, prefix, hidden, fields)
            assert (node["owner"] or {}).get("id") == row["owner_id"]
            if container == "edges":
                assert (node["department"] or {}).get("id") == row["department_id"]
                emails = {p.identity_id: p.email for p in world[slug].people.values()}
                if row["owner_id"] in emails:
                    assert node["owner"]["email"] == emails[row["owner_id"]]
        assert redacted(reply) == sorted(hidden)
    if key == "reader":
        assert rows == []
    elif key in ("admin", "auditor"):
        assert len(rows) == len(snap.rows)


@pytest.mark.parametrize(("slug", "key"), MATRIX, ids=MATRIX_IDS)
async def test_detail_shows_visible_customers_and_hides_the_rest_like_missing_ones(
    api: Api, world: World, samples: Samples, slug: str, key: str
) -> None:
    snap = await snapshot(world[slug])
    who = snap.who(key)
    credential = snap.credential(key)
    missing = await api.post(slug, credential, DETAIL_NAME, {"id": missing_id()})
    assert missing.codes == ["NOT_FOUND"] and missing.data is None
    for row in snap.rows:
        if not snap.visible(who, row):
            reply = await api.post(slug, credential, DETAIL_NAME, {"id": str(row["id"])})
            assert reply.body == missing.body, (key, row["name"])
            continue
        reply = await api.post(slug, credential, DETAIL, {"id": str(row["id"])})
        node = reply.ok()["customer"]
        hidden: list[str] = []
        check_customer(who, row, node, "customer", hidden)
        assert redacted(reply) == sorted(hidden)
        assert (node["owner"] or {}).get("id") == row["owner_id"]
        assert (node["department"] or {}).get("id") == row["department_id"]


@pytest.mark.parametrize("key", CALLERS)
async def test_other_tenants_customers_are_not_found_like_missing_ones(
    api: Api, world: World, samples: Samples, key: str
) -> None:
    for slug in TENANTS:
        credential = world[slug].keys[key] if key in APPS else world[slug].tokens[key]
        missing = await api.post(slug, credential, DETAIL_NAME, {"id": missing_id()})
        assert missing.codes == ["NOT_FOUND"]
        for other in TENANTS:
            if other == slug:
                continue
            # The other tenant's customers owned by the same kind of person, and one of
            # the world's: ids that would be visible to this caller in their own tenant.
            theirs = [*samples.ids[other], str(world[other].customers[0]["id"])]
            for customer_id in theirs:
                reply = await api.post(slug, credential, DETAIL_NAME, {"id": customer_id})
                assert reply.body == missing.body, (slug, key, other)
                assert f"{SAMPLE}-{other}" not in reply.text


# --- where ---------------------------------------------------------------------------

TEXT_FIELDS = (
    "name",
    "phone",
    "email",
    "address",
    "wechat",
    "idNumber",
    "uscc",
    "remarks",
    "creditRating",
    "gender",
)
ORDERED_FIELDS = ("birthday", "paymentCapacity", "annualRevenue")


def _ops(gql: str) -> tuple[str, ...]:
    extra = ("CONTAINS",) if gql in TEXT_FIELDS else ("GT",) if gql in ORDERED_FIELDS else ()
    return ("EQ", "NE", "IN", "IS_NULL", *extra)


def _text(column: str, value: Any) -> str:
    return value.isoformat() if column == "birthday" else str(value)


def _probe_values(snap: Snapshot, who: Who, samples: list[str], column: str) -> list[str]:
    """Values to filter with: one from a sample the caller sees (if any) and one from a
    sample they don't (if any) — the second must never match anything."""
    rows = [snap.row(i) for i in samples]
    seen = [r for r in rows if snap.visible(who, r) and r[column] is not None]
    unseen = [r for r in rows if not snap.visible(who, r) and r[column] is not None]
    return [_text(column, group[0][column]) for group in (seen, unseen) if group]


def _condition(gql: str, op: str, values: list[str]) -> dict[str, Any]:
    if op == "IS_NULL":
        return {"field": gql, "op": op}
    if op == "IN":
        return {"field": gql, "op": op, "values": values}
    if op == "CONTAINS":
        return {"field": gql, "op": op, "value": values[0][1:6]}
    return {"field": gql, "op": op, "value": values[0]}


def _args(column: str, condition: dict[str, Any]) -> list[Any]:
    if condition["op"] == "CONTAINS":
        return [condition["value"]]
    raw = condition.get("values") or ([condition["value"]] if "value" in condition else [])
    return [parse_value(column, value) for value in raw]


def assert_unknown_field(reply: Response, reference: Response, name: str) -> None:
    """Refused exactly like a field that doesn't exist (only the name differs)."""
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None, reply.body
    (error,) = reply.errors
    (known,) = reference.errors
    assert error["message"].replace(repr(name), repr(NOWHERE)) == known["message"]
    assert {**error, "message": known["message"]} == known


def assert_refused(reply: Response, reference: Response, name: str, mode: str) -> None:
    """The refusal the policy promises: "unknown" like a missing field, or "masked"."""
    if mode == "unknown":
        assert_unknown_field(reply, reference, name)
        return
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None, reply.body
    assert reply.errors[0]["extensions"]["field"] == "where[0].op", reply.body
    assert "masked" in reply.errors[0]["message"], reply.body


@pytest.mark.parametrize(("slug", "key"), MATRIX, ids=MATRIX_IDS)
async def test_where_filters_only_what_the_caller_reads_in_full(
    api: Api, world: World, samples: Samples, slug: str, key: str
) -> None:
    snap = await snapshot(world[slug])
    who = snap.who(key)
    credential = snap.credential(key)
    rows = snap.visible_rows(who)

    async def ask(condition: dict[str, Any]) -> Response:
        return await api.post(
            slug, credential, IDS, {"first": len(snap.rows) + 1, "where": [condition]}
        )

    nowhere = await ask({"field": NOWHERE, "op": "EQ", "value": "1"})
    assert nowhere.codes == ["BAD_USER_INPUT"]
    assert nowhere.errors[0]["extensions"]["field"] == "where[0].field"
    for gql, column in GQL_COLUMNS.items():
        if gql in ("tags", "kind", "region", "tier", "version", "consentsToSharing"):
            continue
        values = _probe_values(snap, who, samples.ids[slug], column)
        for op in _ops(gql):
            condition = _condition(gql, op, values)
            reply = await ask(condition)
            mode = filter_mode(who, column, op)
            label = f"{key}: {condition} ({mode})"
            if mode in ("unknown", "masked"):
                if who.is_app or reply.errors:
                    assert_refused(reply, nowhere, gql, mode)
                else:
                    # Members of staff get an answer instead of the promised refusal
                    # (test_where_refuses_what_the_role_cannot_read_in_full); at least it
                    # must not match a single customer: no existence oracle.
                    page = reply.ok()["customers"]
                    assert (page["nodes"], page["totalCount"]) == ([], 0), label
                continue
            page = reply.ok()["customers"]
            args = _args(column, condition)
            want = [str(r["id"]) for r in rows if matches(op, r[column], args)]
            assert [node["id"] for node in page["nodes"]] == want, label
            assert page["totalCount"] == len(want), label


# (caller, field, op, value, the refusal promised): the brief's examples and their kin.
PROMISED_REFUSALS = (
    ("sales", "annualRevenue", "GT", "0", "unknown"),
    ("sales", "creditRating", "EQ", "AAA", "unknown"),
    ("sales2", "paymentCapacity", "GT", "0", "unknown"),
    ("sales", "gender", "EQ", "MALE", "unknown"),
    ("manager", "gender", "EQ", "MALE", "unknown"),
    ("auditor", "gender", "EQ", "MALE", "unknown"),
    ("auditor", "phone", "CONTAINS", "138", "masked"),
    ("auditor", "email", "CONTAINS", "zhang", "masked"),
    ("auditor", "remarks", "CONTAINS", "VIP", "masked"),
    ("auditor", "annualRevenue", "GT", "0", "masked"),
    ("auditor", "idNumber", "EQ", "110101199003073204", "masked"),
    ("manager", "idNumber", "CONTAINS", "110101", "masked"),
    ("sales", "birthday", "GT", "1900-01-01", "masked"),
)


@pytest.mark.parametrize("slug", TENANTS)
async def test_where_refuses_what_the_role_cannot_read_in_full(
    api: Api, world: World, samples: Samples, slug: str
) -> None:
    wrong: list[str] = []
    for key, field, op, value, mode in PROMISED_REFUSALS:
        token = world[slug].tokens[key]

        async def ask(name: str, op: str = op, value: str = value, token: str = token) -> Response:
            condition = {"field": name, "op": op, "value": value}
            return await api.post(slug, token, IDS, {"first": 5, "where": [condition]})

        reply, nowhere = await ask(field), await ask(NOWHERE)
        try:
            assert_refused(reply, nowhere, field, mode)
        except AssertionError:
            wrong.append(f"{key} {field} {op} {value}: {reply.text[:160]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("slug", "key"), MATRIX, ids=MATRIX_IDS)
async def test_hidden_fields_are_unknown_in_order_by_like_missing_ones(
    api: Api, world: World, samples: Samples, slug: str, key: str
) -> None:
    credential = world[slug].keys[key] if key in ("reader", "writer") else world[slug].tokens[key]

    async def order(field: str) -> Response:
        return await api.post(
            slug, credential, IDS, {"first": 5, "order": {"field": field, "direction": "ASC"}}
        )

    nowhere = await order(NOWHERE)
    assert nowhere.codes == ["BAD_USER_INPUT"]
    assert nowhere.errors[0]["extensions"]["field"] == "orderBy"
    for field in ("annualRevenue", "creditRating", "idNumber", "gender", "phone", "remarks"):
        assert_unknown_field(await order(field), nowhere, field)


@pytest.mark.parametrize(("slug", "key"), LISTERS, ids=LISTER_IDS)
async def test_search_order_and_paging_cover_exactly_the_visible_customers(
    api: Api, world: World, samples: Samples, slug: str, key: str
) -> None:
    snap = await snapshot(world[slug])
    who = snap.who(key)
    credential = snap.credential(key)
    visible = {str(r["id"]) for r in snap.visible_rows(who)}
    admin = world[slug].tokens["admin"]
    for direction in ("ASC", "DESC"):
        variables = {
            "first": len(snap.rows) + 1,
            "order": {"field": "name", "direction": direction},
        }
        everyone = (await api.post(slug, admin, IDS, variables)).ok()["customers"]["nodes"]
        want = [node["id"] for node in everyone if node["id"] in visible]
        page = (await api.post(slug, credential, IDS, variables)).ok()["customers"]
        assert [node["id"] for node in page["nodes"]] == want
        assert page["totalCount"] == len(want)
        # The same order walked three at a time.
        walked: list[str] = []
        after = None
        while True:
            step = {**variables, "first": 3, "after": after}
            part = (await api.post(slug, credential, IDS, step)).ok()["customers"]
            walked += [node["id"] for node in part["nodes"]]
            assert part["totalCount"] == len(want)
            if not part["pageInfo"]["hasNextPage"]:
                break
            after = part["pageInfo"]["endCursor"]
        assert walked == want
    for term in (SAMPLE, "个人", f"{slug}客户"):
        found = (
            await api.post(slug, credential, IDS, {"first": len(snap.rows), "search": term})
        ).ok()
        want_ids = [str(r["id"]) for r in snap.visible_rows(who) if term in r["name"]]
        assert [n["id"] for n in found["customers"]["nodes"]] == want_ids, term
        assert found["customers"]["totalCount"] == len(want_ids)


# --- the promises, spelled out ------------------------------------------------------


@pytest.mark.parametrize("slug", TENANTS)
async def test_auditor_finds_a_customer_by_exact_phone_or_email_and_sees_them_masked(
    api: Api, world: World, samples: Samples, slug: str
) -> None:
    token = world[slug].tokens["auditor"]
    specimen = samples.specimen[slug]

    async def where(*conditions: dict[str, Any]) -> Response:
        return await api.post(slug, token, LIST_NODES, {"first": 50, "where": list(conditions)})

    phone_reply = await where({"field": "phone", "op": "EQ", "value": "138 1234 5678"})
    by_phone = phone_reply.ok()["customers"]
    assert [n["id"] for n in by_phone["nodes"]] == [specimen] and by_phone["totalCount"] == 1
    assert by_phone["nodes"][0]["phone"] == "138****5678"
    email_reply = await where({"field": "email", "value": "zhang.san@example.com"})
    by_email = email_reply.ok()["customers"]
    assert [n["id"] for n in by_email["nodes"]] == [specimen]
    assert by_email["nodes"][0]["email"] == "z***@example.com"
    for reply in (phone_reply, email_reply):
        assert "13812345678" not in reply.text and "zhang.san@" not in reply.text
    # Exact matching is for contact fields only; other ops and other classes never
    # match (refused, or at least empty: see test_where_refuses_...).
    for condition in (
        {"field": "phone", "op": "CONTAINS", "value": "138"},
        {"field": "phone", "op": "IN", "values": ["13812345678"]},
        {"field": "phone", "op": "NE", "value": "13800000000"},
        {"field": "email", "op": "CONTAINS", "value": "zhang"},
        {"field": "remarks", "op": "EQ", "value": SPECIMEN["remarks"]},
        {"field": "annualRevenue", "op": "EQ", "value": "5000000"},
    ):
        reply = await where(condition)
        if not reply.errors:
            assert reply.ok()["customers"]["totalCount"] == 0, condition
        else:
            assert reply.codes == ["BAD_USER_INPUT"], condition


@pytest.mark.parametrize("slug", TENANTS)
async def test_salesperson_filtering_on_revenue_matches_nothing_not_even_their_own(
    api: Api, world: World, samples: Samples, slug: str
) -> None:
    """Their own samples have revenue > 0, hidden from them: no row may match."""
    token = world[slug].tokens["sales"]
    condition = {"field": "annualRevenue", "op": "GT", "value": "0"}
    reply = await api.post(slug, token, IDS, {"first": 50, "where": [condition]})
    if reply.errors:
        salary = {**condition, "field": NOWHERE}
        nowhere = await api.post(slug, token, IDS, {"first": 50, "where": [salary]})
        assert_unknown_field(reply, nowhere, "annualRevenue")
    else:
        assert reply.ok()["customers"] == {
            "totalCount": 0,
            "nodes": [],
            "pageInfo": {"hasNextPage": False, "endCursor": None},
        }


@pytest.mark.parametrize("slug", TENANTS)
async def test_manager_filters_revenue_within_the_department_tree_only(
    api: Api, world: World, samples: Samples, slug: str
) -> None:
    """The manager reads revenue in full in the tree: filtering works there, and finds no
    customer of the auditor's (审计部), whose revenue is set too."""
    snap = await snapshot(world[slug])
    manager = snap.who("manager")
    want = [
        str(r["id"])
        for r in snap.visible_rows(manager)
        if r["annual_revenue"] is not None and r["annual_revenue"] > 0
    ]
    assert len(want) >= 7, "the sales, sales2, manager samples and the specimen"
    condition = {"field": "annualRevenue", "op": "GT", "value": "0"}
    seen = await api.post(
        slug, snap.credential("manager"), IDS, {"first": 50, "where": [condition]}
    )
    page = seen.ok()["customers"]
    assert [n["id"] for n in page["nodes"]] == want and page["totalCount"] == len(want)


@pytest.mark.parametrize("slug", TENANTS)
async def test_masked_forms_look_as_documented(
    api: Api, world: World, samples: Samples, slug: str
) -> None:
    specimen = samples.specimen[slug]
    snap = await snapshot(world[slug])
    id_number = snap.row(specimen)["id_number"]
    masked_id = f"110101********{id_number[-4:]}"
    everything_masked = {
        "phone": "138****5678",
        "email": "z***@example.com",
        "address": "浙江省杭州市****",
        "wechat": "zh****",
        "idNumber": masked_id,
        "birthday": "1990-**-**",
        "gender": None,
        "creditRating": "A**",
        "paymentCapacity": "100,000 – 1,000,000",
        "annualRevenue": "1,000,000 – 10,000,000",
        "remarks": "[withheld]",
    }
    full = {
        "phone": "13812345678",
        "email": "zhang.san@example.com",
        "address": "浙江省杭州市西湖区文三路90号",
        "wechat": "zhangsan_1990",
        "idNumber": id_number,
        "birthday": "1990-03-07",
        "gender": "MALE",
        "creditRating": "AAA",
        "paymentCapacity": "250000.00",
        "annualRevenue": "5000000.00",
        "remarks": "VIP：只在下午联系",
    }
    identity_masked = {**full, "idNumber": masked_id, "birthday": "1990-**-**", "gender": None}
    sales_view = {
        **identity_masked,
        "creditRating": None,
        "paymentCapacity": None,
        "annualRevenue": None,
    }
    views = {
        "admin": full,
        "manager": identity_masked,
        "sales": sales_view,
        "auditor": everything_masked,
    }
    for key, want in views.items():
        reply = await api.post(slug, world[slug].tokens[key], DETAIL, {"id": specimen})
        node = reply.ok()["customer"]
        assert {field: node[field] for field in want} == want, key
        hidden = sorted(f"customer.{field}" for field, value in want.items() if value is None)
        assert redacted(reply) == hidden, key
    sales2 = await api.post(slug, world[slug].tokens["sales2"], DETAIL, {"id": specimen})
    assert sales2.codes == ["NOT_FOUND"]


def test_the_model_agrees_with_the_policy_table() -> None:
    """The model itself, against the table in the brief (a typo there would make every
    matrix test agree with the wrong thing)."""
    users = {k: Who(k, r, 1, None) for k, r in (("m", "manager"), ("s", "sales"), ("a", "auditor"))}
    full = FULL

    def of(who: str, column: str) -> str:
        return expected(users[who], dict.fromkeys(CUSTOMER_FIELDS), column)[0]

    assert [of("m", c) for c in ("phone", "annual_revenue", "remarks", "name")] == [full] * 4
    assert [of("m", c) for c in ("id_number", "uscc", "birthday")] == [MASKED] * 3
    assert of("m", "gender") == HIDDEN
    assert [of("s", c) for c in ("phone", "remarks", "name", "address")] == [full] * 4
    assert [of("s", c) for c in ("id_number", "birthday")] == [MASKED] * 2
    assert [of("s", c) for c in ("gender", "credit_rating", "annual_revenue")] == [HIDDEN] * 3
    assert of("a", "name") == full and of("a", "gender") == HIDDEN
    assert [of("a", c) for c in ("phone", "uscc", "annual_revenue", "remarks")] == [MASKED] * 4


@pytest.mark.parametrize("slug", TENANTS)
async def test_an_app_that_sees_no_field_gets_an_empty_list_not_an_error(
    api: Api, world: World, slug: str
) -> None:
    reply = await api.post(slug, world[slug].keys["writer"], IDS, {"first": 5})
    assert reply.ok()["customers"] == {
        "totalCount": 0,
        "nodes": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
