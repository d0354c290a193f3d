"""Oversized or malformed documents are refused before they run; errors never leak."""

from __future__ import annotations

import pytest

from dangan.graphql.customers import queries
from tests.support.api import Api
from tests.support.world import World


async def test_depth_within_the_limit_runs(api: Api, world: World) -> None:
    query = "{ customers(first: 1) { edges { node { owner { id } department { name } } } } }"
    assert (await api.post("alpha", world["alpha"].tokens["admin"], query)).ok()


async def test_depth_beyond_the_limit_is_refused_before_running(
    api: Api, world: World, settings
) -> None:
    chain = "slug"
    for _ in range(settings.max_query_depth):
        chain = f"tenant {{ {chain} }}"
    refused = await api.post("alpha", world["alpha"].tokens["admin"], "{ me { " + chain + " } }")
    assert refused.status == 400
    assert refused.codes == ["BAD_USER_INPUT"]
    assert "levels deep" in refused.errors[0]["message"]
    fragments = (
        "query { ...A } fragment A on Query { me { ...B } } fragment B on Viewer { " + chain + " }"
    )
    via_fragments = await api.post("alpha", world["alpha"].tokens["admin"], fragments)
    assert via_fragments.status == 400, "depth counts through fragments"


async def test_alias_limit(api: Api, world: World, settings) -> None:
    aliases = " ".join(f"a{i}: me {{ id }}" for i in range(settings.max_aliases + 1))
    reply = await api.post("alpha", world["alpha"].tokens["admin"], "{ " + aliases + " }")
    assert reply.status == 400 and "aliases" in reply.errors[0]["message"]


async def test_token_limit(api: Api, world: World, settings) -> None:
    fields = " ".join("__typename" for _ in range(settings.max_tokens))
    reply = await api.post("alpha", world["alpha"].tokens["admin"], "{ " + fields + " }")
    assert reply.status == 400 and reply.codes == ["BAD_USER_INPUT"]


async def test_cost_limit_counts_page_sizes(api: Api, world: World, settings) -> None:
    many = " ".join(
        f"p{i}: customers(first: 1000) {{ edges {{ node {{ id name phone owner {{ id email }} }} }} }}"
        for i in range(10)
    )
    reply = await api.post("alpha", world["alpha"].tokens["admin"], "{ " + many + " }")
    assert reply.status == 400
    assert "could return about" in reply.errors[0]["message"]
    variables = await api.post(
        "alpha",
        world["alpha"].tokens["admin"],
        "query($n: Int!) { " + many.replace("first: 1000", "first: $n") + " }",
        {"n": 1000},
    )
    assert variables.status == 400, "page sizes given as variables count too"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"query": 5}', "query"),
        (b'["a"]', "query"),
        (b'{"query": "{ me { id } }", "variables": []}', "variables"),
    ],
)
async def test_malformed_requests_are_400(
    api: Api, world: World, payload: bytes, fragment: str
) -> None:
    reply = await api.client.post(
        "/t/alpha/graphql",
        content=payload,
        headers={
            "Authorization": f"Bearer {world['alpha'].tokens['admin']}",
            "Content-Type": "application/json",
        },
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert fragment in body["errors"][0]["message"]


async def test_syntax_and_schema_errors_are_bad_input(api: Api, world: World) -> None:
    token = world["alpha"].tokens["admin"]
    syntax = await api.post("alpha", token, "{ customers(first: ) }")
    assert syntax.status == 400 and syntax.codes == ["BAD_USER_INPUT"]
    unknown = await api.post(
        "alpha", token, "{ customers(first: 1) { edges { node { salary } } } }"
    )
    assert unknown.status == 400 and "salary" in unknown.errors[0]["message"]
    wrong_type = await api.post(
        "alpha", token, "query($n: Int!) { customers(first: $n) { totalCount } }", {"n": "ten"}
    )
    assert wrong_type.codes == ["BAD_USER_INPUT"]


async def test_mutations_are_refused_over_get(api: Api, world: World) -> None:
    reply = await api.client.get(
        "/t/alpha/graphql",
        params={
            "query": 'mutation { createCustomer(input: {kind: INDIVIDUAL, name: "x"}) { id } }'
        },
        headers={"Authorization": f"Bearer {world['alpha'].tokens['admin']}"},
    )
    assert reply.status_code == 405
    ok = await api.client.get(
        "/t/alpha/graphql",
        params={"query": "{ me { id } }"},
        headers={"Authorization": f"Bearer {world['alpha'].tokens['admin']}"},
    )
    assert ok.status_code == 200 and ok.json()["data"]["me"]["id"]


async def test_internal_errors_show_only_a_request_id(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args, **kwargs):
        raise RuntimeError('relation "t_beta.customer" SELECT password_hash FROM public.identity')

    monkeypatch.setattr(queries.customers, "list_customers", broken)
    reply = await api.post(
        "alpha", world["alpha"].tokens["admin"], "{ customers(first: 1) { totalCount } }"
    )
    assert reply.status == 200
    assert reply.codes == ["INTERNAL"]
    request_id = reply.errors[0]["extensions"]["requestId"]
    assert request_id in reply.errors[0]["message"]
    for secret in ("SELECT", "password_hash", "t_beta", "Traceback", "RuntimeError"):
        assert secret not in reply.text
