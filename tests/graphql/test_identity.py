"""Who may call which tenant: 401 / 403 / 404, tokens, API keys, login and its limits."""

from __future__ import annotations

import jwt
import pytest

from dangan.services.api_keys import create_app, revoke_app
from tests.support.api import Api
from tests.support.world import TENANTS, World

ME = "{ me { kind id name email roles scopes departmentId tenant { slug } } }"


async def test_every_role_sees_itself_in_its_tenant(api: Api, world: World) -> None:
    for slug in TENANTS:
        for who, token in world[slug].tokens.items():
            me = (await api.post(slug, token, ME)).ok()["me"]
            person = world[slug].people[who]
            assert me["kind"] == "USER"
            assert me["id"] == person.identity_id
            assert me["email"] == f"{who}@{slug}.test"
            assert me["roles"] == list(person.roles)
            assert me["tenant"]["slug"] == slug


async def test_partner_app_is_a_caller_with_scopes(api: Api, world: World) -> None:
    me = (await api.post("beta", world["beta"].keys["reader"], ME)).ok()["me"]
    assert me["kind"] == "PARTNER_APP"
    assert me["scopes"] == ["customers:read"]
    assert me["email"] is None


@pytest.mark.parametrize(
    "credential",
    [None, "", "not-a-jwt", "dgk_", "dgk_abc_def", "eyJhbGciOiJIUzI1NiJ9.e30.x"],
)
async def test_missing_or_bad_credential_is_401(
    api: Api, world: World, credential: str | None
) -> None:
    reply = await api.post("alpha", credential, ME)
    assert reply.status == 401
    assert reply.codes == ["UNAUTHENTICATED"]
    assert reply.data is None


async def test_wrong_scheme_is_401(api: Api, world: World) -> None:
    reply = await api.client.post(
        "/t/alpha/graphql",
        json={"query": ME},
        headers={"Authorization": f"Basic {world['alpha'].tokens['admin']}"},
    )
    assert reply.status_code == 401


async def test_token_signed_with_another_secret_is_401(api: Api, world: World) -> None:
    forged = jwt.encode(
        {
            "iss": "dangan",
            "sub": str(world["alpha"].people["admin"].identity_id),
            "ten": "alpha",
            "exp": 4102444800,
        },
        "some-other-secret-key-of-enough-length",
        algorithm="HS256",
    )
    reply = await api.post("alpha", forged, ME)
    assert reply.status == 401 and reply.codes == ["UNAUTHENTICATED"]


async def test_expired_token_is_401(api: Api, world: World, settings) -> None:
    expired = jwt.encode(
        {
            "iss": "dangan",
            "sub": str(world["alpha"].people["admin"].identity_id),
            "ten": "alpha",
            "exp": 1000,
        },
        settings.secret_key,
        algorithm="HS256",
    )
    reply = await api.post("alpha", expired, ME)
    assert reply.status == 401
    assert "expired" in reply.errors[0]["message"]


async def test_token_of_tenant_a_on_tenant_b_is_403_never_empty(api: Api, world: World) -> None:
    for source in TENANTS:
        for target in TENANTS:
            if source == target:
                continue
            for token in world[source].tokens.values():
                reply = await api.post(target, token, "{ customers(first: 5) { totalCount } }")
                assert reply.status == 403, (source, target)
                assert reply.codes == ["FORBIDDEN"]
                assert "data" not in reply.body or reply.data is None


async def test_api_key_of_tenant_a_on_tenant_b_is_403(api: Api, world: World) -> None:
    reply = await api.post("gamma", world["alpha"].keys["reader"], ME)
    assert reply.status == 403 and reply.codes == ["FORBIDDEN"]


async def test_unknown_tenant_is_404(api: Api, world: World) -> None:
    for tenant in ("nosuch", "ALPHA", "alpha;drop", "t_alpha"):
        reply = await api.post(tenant, world["alpha"].tokens["admin"], ME)
        assert reply.status == 404, tenant
        assert reply.codes == ["NOT_FOUND"]


async def test_revoked_api_key_stops_working_at_once(api: Api, world: World) -> None:
    created = await create_app(world["gamma"].ref, "short-lived", ["customers:read"])
    assert (await api.post("gamma", created.key, ME)).status == 200
    await revoke_app(world["gamma"].ref, "short-lived")
    reply = await api.post("gamma", created.key, ME)
    assert reply.status == 401 and reply.codes == ["UNAUTHENTICATED"]


async def test_api_key_with_a_wrong_secret_is_401(api: Api, world: World) -> None:
    key = world["alpha"].keys["reader"]
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (await api.post("alpha", tampered, ME)).status == 401


LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt } }"


async def test_login_issues_a_token_for_this_tenant_only(api: Api, world: World) -> None:
    reply = await api.post(
        "alpha", None, LOGIN, {"e": "SALES@alpha.test", "p": "alpha-sales-password"}
    )
    token = reply.ok()["login"]["token"]
    me = (await api.post("alpha", token, ME)).ok()["me"]
    assert me["email"] == "sales@alpha.test"
    assert (await api.post("beta", token, ME)).status == 403


async def test_login_of_a_non_member_fails_like_a_wrong_password(api: Api, world: World) -> None:
    stranger = await api.post(
        "beta", None, LOGIN, {"e": "sales@alpha.test", "p": "alpha-sales-password"}
    )
    wrong = await api.post("beta", None, LOGIN, {"e": "sales@beta.test", "p": "wrong-password!"})
    assert stranger.codes == wrong.codes == ["UNAUTHENTICATED"]
    assert stranger.errors[0]["message"] == wrong.errors[0]["message"]


async def test_login_is_rate_limited_after_repeated_failures(
    api: Api, world: World, settings
) -> None:
    variables = {"e": "auditor@gamma.test", "p": "not-the-password"}
    for _ in range(settings.login_max_failures):
        assert (await api.post("gamma", None, LOGIN, variables)).codes == ["UNAUTHENTICATED"]
    limited = await api.post("gamma", None, LOGIN, variables)
    assert limited.codes == ["RATE_LIMITED"]
    assert limited.errors[0]["extensions"]["retryAfter"] > 0
    right = await api.post("gamma", None, LOGIN, {**variables, "p": "gamma-auditor-password"})
    assert right.codes == ["RATE_LIMITED"], "the limit holds even for the right password"


async def test_anonymous_callers_may_only_log_in(api: Api, world: World) -> None:
    mixed = (
        'mutation { login(email: "a@b.cn", password: "x") { token }'
        ' createCustomer(input: {kind: INDIVIDUAL, name: "x"}) { id } }'
    )
    assert (await api.post("alpha", None, mixed)).status == 401
    assert (await api.post("alpha", None, "{ __typename }")).status == 401


async def test_anonymous_garbage_is_401_not_a_parser_oracle(api: Api, world: World) -> None:
    for document in ("{ customers(first: ", "{ __schema { types { name } } }", "{ salary }"):
        reply = await api.post("alpha", None, document)
        assert reply.status == 401, document
        assert reply.codes == ["UNAUTHENTICATED"]
