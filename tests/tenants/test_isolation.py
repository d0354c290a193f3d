"""Tenant isolation is enforced by PostgreSQL itself, not only by the app not asking.

Every request is one transaction that begins ``SET LOCAL search_path`` + ``SET LOCAL
ROLE`` (``dangan.tenants.scope``). These tests run real SQL inside that scope and check
that the database refuses other tenants' tables and the platform tables, that pooled
connections come back clean, and that asyncpg's statement cache never lets a statement
prepared for one tenant answer for another — including on a half-migrated cluster where
the tenants' tables differ.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.asyncpg import AsyncpgDBClient
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from dangan.database import SafeConnection, tortoise_config
from dangan.devstack import Endpoints
from dangan.models.archive import Customer
from dangan.tenants.names import quote_ident
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import (
    TenantRef,
    current_db,
    raw_connection,
    run_in_tenant,
    scope_sql,
    tenant_transaction,
)
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import TENANTS, World

NAMES = "SELECT name FROM customer ORDER BY name LIMIT 50"
NAMES_LIKE = "SELECT name FROM customer WHERE name LIKE $1 ORDER BY name LIMIT 50"
STATE = (
    "SELECT pg_backend_pid() AS pid, current_user AS who, session_user AS login,"
    " current_setting('search_path') AS path"
)


# --- helpers ------------------------------------------------------------------------


@asynccontextmanager
async def small_pool(
    endpoints: Endpoints, size: int, connection_class: type[asyncpg.Connection] = SafeConnection
) -> AsyncIterator[asyncpg.Pool]:
    """A Tortoise-independent asyncpg pool (default statement cache) on the test database."""
    pool = await asyncpg.create_pool(
        endpoints.database_url, min_size=size, max_size=size, connection_class=connection_class
    )
    try:
        yield pool
    finally:
        await pool.close()


async def probe(conn: Any, *statements: str) -> asyncpg.PostgresError | None:
    """Run ``statements`` in a savepoint of the open transaction; the error, or None."""
    await conn.execute("SAVEPOINT probe")
    try:
        for sql in statements:
            await conn.fetch(sql)
    except asyncpg.PostgresError as exc:
        await conn.execute("ROLLBACK TO SAVEPOINT probe")
        return exc
    await conn.execute("RELEASE SAVEPOINT probe")
    return None


async def tenant_names(tenant: TenantRef) -> set[str]:
    async def read() -> set[str]:
        return {row["name"] for row in await raw_connection().fetch("SELECT name FROM customer")}

    return await run_in_tenant(tenant, read)


async def app_role_is_superuser() -> bool:
    _, rows = await connections.get("default").execute_query(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    )
    return bool(rows[0]["rolsuper"])


@asynccontextmanager
async def single_connection_default(endpoints: Endpoints) -> AsyncIterator[AsyncpgDBClient]:
    """Make Tortoise's ``default`` (for this task only) a pool of exactly one connection."""
    credentials = tortoise_config(endpoints.database_url, pool_size=1)["connections"]["default"][
        "credentials"
    ]
    client = AsyncpgDBClient(connection_name="default", **credentials)
    await client.create_connection(with_db=True)
    token = connections.set("default", client)
    try:
        yield client
    finally:
        connections.reset(token)
        await client.close()


# --- 1. the database refuses, inside the tenant transaction ----------------------------


async def test_tenant_role_is_refused_other_tenants_and_platform_tables(world: World) -> None:
    alpha, beta, gamma = (world[slug].ref for slug in TENANTS)
    async with tenant_transaction(alpha):
        conn = raw_connection()
        state = await conn.fetchrow(STATE)
        assert state["who"] == alpha.role_name
        assert state["login"] != alpha.role_name  # the app logged in; only the role switched
        assert state["path"] == alpha.schema_name
        assert not await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", "t_beta")

        own = {row["name"] for row in await conn.fetch("SELECT name FROM customer")}
        qualified = {row["name"] for row in await conn.fetch("SELECT name FROM t_alpha.customer")}
        assert own == qualified
        assert world_names(world)["alpha"] <= own
        assert_no_foreign_names(world, "alpha", own)

        refused_schema = [
            "SELECT name FROM t_beta.customer",
            "SELECT count(*) FROM t_gamma.member",
            "SELECT * FROM t_beta.department_closure",
            "SELECT nextval('t_beta.department_id_seq')",
            "INSERT INTO t_beta.customer (kind, name) VALUES ('INDIVIDUAL', 'planted')",
            "UPDATE t_gamma.customer SET name = 'x'",
            "DELETE FROM t_beta.customer",
            "CREATE TABLE t_beta.planted (id integer)",
            "ALTER TABLE t_beta.customer ADD COLUMN planted text",
        ]
        for sql in refused_schema:
            error = await probe(conn, sql)
            assert isinstance(error, asyncpg.InsufficientPrivilegeError), (sql, error)
            assert "permission denied for schema" in str(error), (sql, error)

        for table in ("identity", "tenant", "api_client", "membership", "platform_meta"):
            error = await probe(conn, f"SELECT * FROM public.{table}")
            assert isinstance(error, asyncpg.InsufficientPrivilegeError), (table, error)
            assert f"permission denied for table {table}" in str(error)
        error = await probe(conn, "CREATE TABLE public.planted (id integer)")
        assert isinstance(error, asyncpg.InsufficientPrivilegeError), error

        # Tricks that don't switch the role: a search_path to another tenant's schema
        # resolves nothing (schemas without USAGE are skipped), a mixed one only finds
        # our own table.
        error = await probe(conn, "SET LOCAL search_path TO t_beta", "SELECT name FROM customer")
        assert isinstance(error, asyncpg.UndefinedTableError), error
        await conn.execute("SAVEPOINT mixed")
        await conn.execute("SET LOCAL search_path TO t_gamma, t_beta, t_alpha")
        mixed = {row["name"] for row in await conn.fetch("SELECT name FROM customer")}
        await conn.execute("ROLLBACK TO SAVEPOINT mixed")
        assert mixed == own
        # ... and the probes left the scope as it was.
        assert await conn.fetchrow(STATE) == state

        # Tortoise models resolve through the same scope.
        assert set(await Customer.all().values_list("name", flat=True)) == own

    for tenant, other in ((beta, gamma), (gamma, alpha)):
        with pytest.raises(OperationalError) as info:
            async with tenant_transaction(tenant) as db:
                await db.execute_query(f"SELECT name FROM {other.schema_name}.customer")
        assert isinstance(info.value.__cause__, asyncpg.InsufficientPrivilegeError)


async def test_app_role_can_switch_but_does_not_inherit(world: World) -> None:
    """The login role may SET ROLE to a tenant role (membership) but holds none of its
    rights (NOINHERIT / INHERIT FALSE), so forgetting the scope reads nothing."""
    alpha = world["alpha"].ref
    db = connections.get("default")
    _, rows = await db.execute_query(
        "SELECT pg_has_role(current_user, $1, 'MEMBER') AS member,"
        " pg_has_role(current_user, $1, 'USAGE') AS inherits,"
        " has_schema_privilege(current_user, $2, 'USAGE') AS schema_usage",
        [alpha.role_name, alpha.schema_name],
    )
    assert rows[0]["member"]
    if await app_role_is_superuser():
        pytest.skip(
            "the app logs in as a superuser (e.g. DANGAN_DATABASE_URL=postgresql://postgres@…),"
            " which bypasses every privilege check: only the tenant role can be refused"
        )
    assert not rows[0]["inherits"]
    assert not rows[0]["schema_usage"]
    for slug in TENANTS:
        with pytest.raises(OperationalError) as info:
            await db.execute_query(f"SELECT * FROM t_{slug}.customer")
        assert isinstance(info.value.__cause__, asyncpg.InsufficientPrivilegeError)
        assert "permission denied for schema" in str(info.value.__cause__)
    # Only the search_path, without the role: the schema is skipped, nothing resolves.
    with pytest.raises(OperationalError) as info:
        async with in_transaction() as conn:
            await conn.execute_script("SET LOCAL search_path TO t_alpha")
            await conn.execute_query("SELECT * FROM customer")
    assert isinstance(info.value.__cause__, asyncpg.UndefinedTableError)


# --- 1b. pooled connections come back clean ----------------------------------------------


async def test_pooled_connection_is_clean_after_commit_and_rollback(
    world: World, endpoints: Endpoints
) -> None:
    alpha = world["alpha"].ref
    async with small_pool(endpoints, 1) as pool:
        baseline = await pool.fetchrow(STATE)
        assert baseline["who"] == baseline["login"]
        assert not baseline["who"].startswith("t_")
        assert "t_" not in baseline["path"]

        async def clean() -> None:
            assert await pool.fetchrow(STATE) == baseline  # same pid: the same connection

        async with pool.acquire() as conn, conn.transaction():  # commits
            await conn.execute(scope_sql(alpha))
            inside = await conn.fetchrow(STATE)
            assert (inside["who"], inside["path"]) == (alpha.role_name, alpha.schema_name)
            await conn.fetch(NAMES)
        await clean()

        with pytest.raises(RuntimeError):  # rolls back: an exception in the request
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(scope_sql(alpha))
                raise RuntimeError("request failed")
        await clean()

        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # rolls back: refused SQL
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(scope_sql(alpha))
                await conn.fetch("SELECT name FROM t_beta.customer")
        await clean()

        # The safety net: a session-level SET ROLE / search_path (never done by the app)
        # is undone by SafeConnection's reset query before the connection is reused.
        async with pool.acquire() as conn:
            await conn.execute(
                f"SET ROLE {quote_ident(alpha.role_name)}; SET search_path TO t_alpha"
            )
        await clean()

    # Control: asyncpg's own reset (RESET ALL) would hand the role to the next user.
    async with small_pool(endpoints, 1, asyncpg.Connection) as pool:
        async with pool.acquire() as conn:
            await conn.execute(f"SET ROLE {quote_ident(alpha.role_name)}")
        assert await pool.fetchval("SELECT current_user") == alpha.role_name


async def test_app_pool_connections_are_clean_after_tenant_transactions(world: World) -> None:
    alpha, beta = world["alpha"].ref, world["beta"].ref
    used: set[int] = set()
    async with tenant_transaction(alpha):
        used.add(await raw_connection().fetchval("SELECT pg_backend_pid()"))
    with pytest.raises(OperationalError):
        async with tenant_transaction(beta) as db:
            used.add(await raw_connection().fetchval("SELECT pg_backend_pid()"))
            await db.execute_query("SELECT * FROM public.identity")

    pool = connections.get("default")._pool
    held = [await pool.acquire(timeout=5) for _ in range(pool.get_max_size())]
    try:
        states = {row["pid"]: row for row in [await c.fetchrow(STATE) for c in held]}
    finally:
        for conn in held:
            await pool.release(conn)
    assert used <= set(states)
    for row in states.values():
        assert row["who"] == row["login"]
        assert "t_" not in row["path"]


# --- 2. asyncpg's statement cache never answers for another tenant -----------------------


QUALIFIED = "SELECT name FROM t_alpha.customer ORDER BY name LIMIT 50"
VARIANTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "plain": (NAMES, ()),
    "param": (NAMES_LIKE, ("%",)),
    "param_other_value": (NAMES_LIKE, ("%客户%",)),
    # Schema-qualified: a plan cached while alpha asked is still privilege-checked later.
    "qualified_alpha": (QUALIFIED, ()),
}
REFUSED = "refused"


def world_names(world: World) -> dict[str, set[str]]:
    return {slug: {c["name"] for c in world[slug].customers} for slug in TENANTS}


def assert_no_foreign_names(world: World, slug: str, names: Any) -> None:
    for other, theirs in world_names(world).items():
        if other != slug:
            assert not theirs & set(names), (slug, other, names)


async def reference_answers(
    endpoints: Endpoints, refs: list[TenantRef]
) -> dict[tuple[str, str], Any]:
    """Each (tenant, variant) answered on a connection without a statement cache."""
    conn = await asyncpg.connect(endpoints.database_url, statement_cache_size=0)
    answers: dict[tuple[str, str], Any] = {}
    try:
        for tenant in refs:
            for variant, (sql, args) in VARIANTS.items():
                try:
                    async with conn.transaction():
                        await conn.execute(scope_sql(tenant))
                        rows = await conn.fetch(sql, *args)
                    answers[tenant.slug, variant] = [row["name"] for row in rows]
                except asyncpg.InsufficientPrivilegeError:
                    answers[tenant.slug, variant] = REFUSED
    finally:
        await conn.close()
    return answers


async def test_statement_cache_interleaved_tenants_on_a_small_pool(
    world: World, endpoints: Endpoints
) -> None:
    refs = [world[slug].ref for slug in TENANTS]
    expected = await reference_answers(endpoints, refs)
    for (slug, variant), names in expected.items():
        if variant == "qualified_alpha" and slug != "alpha":
            assert names == REFUSED
            continue
        assert names, (slug, variant)  # every answer tells the tenants apart
        assert_no_foreign_names(world, "alpha" if variant == "qualified_alpha" else slug, names)

    async with small_pool(endpoints, 2) as pool:

        async def request(i: int) -> tuple[str, str, int, Any]:
            tenant = refs[i % 3]
            variant = list(VARIANTS)[i % len(VARIANTS)]
            sql, args = VARIANTS[variant]
            pid = -1
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(scope_sql(tenant))
                    pid = await conn.fetchval("SELECT pg_backend_pid()")
                    await asyncio.sleep(0)  # let the other tenants' requests interleave
                    rows = await conn.fetch(sql, *args)
                    return tenant.slug, variant, pid, [row["name"] for row in rows]
            except asyncpg.InsufficientPrivilegeError:
                return tenant.slug, variant, pid, REFUSED

        results = await asyncio.gather(*(request(i) for i in range(240)))

        tenants_by_pid: dict[int, set[str]] = defaultdict(set)
        for slug, variant, pid, answer in results:
            assert answer == expected[slug, variant], (slug, variant, pid)
            tenants_by_pid[pid].add(slug)
        assert len(tenants_by_pid) == 2
        assert all(len(slugs) >= 2 for slugs in tenants_by_pid.values()), tenants_by_pid

        # The answers came from statements each connection prepared once and reused for
        # every tenant (named, cached prepared statements — not re-parsed per request).
        held = [await pool.acquire(timeout=5) for _ in range(2)]
        try:
            for conn in held:
                for text in (NAMES, NAMES_LIKE, QUALIFIED):
                    count = await conn.fetchval(
                        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", text
                    )
                    # The qualified query is refused for beta and gamma before it is
                    # prepared, so a connection that only ran it for them holds none.
                    assert count == 1 or (text == QUALIFIED and count == 0), (text, count)
        finally:
            for conn in held:
                await pool.release(conn)


LIST = "{ customers(first: 100) { totalCount nodes { id name } } }"
SEARCH = (
    "query($s: String!) { customers(first: 100, search: $s,"
    ' orderBy: {field: "name"}) { nodes { name } } }'
)
ONE = "query($id: ID!) { customer(id: $id) { id name } }"


async def test_interleaved_api_requests_of_three_tenants(api: Api, world: World) -> None:
    # What each tenant answers when asked alone (other tests may have added customers).
    alone: dict[tuple[str, str], Any] = {}
    for slug in TENANTS:
        token = world[slug].tokens["admin"]
        listed = (await api.post(slug, token, LIST)).ok()["customers"]
        searched = (await api.post(slug, token, SEARCH, {"s": "客户"})).ok()["customers"]
        alone[slug, "list"] = listed
        alone[slug, "search"] = searched
        names = {n["name"] for n in listed["nodes"]}
        assert names == await tenant_names(world[slug].ref) or listed["totalCount"] > 100
        assert world_names(world)[slug] <= names  # created first, so on the first page
        assert_no_foreign_names(world, slug, names)
        assert searched["nodes"] and all("客户" in n["name"] for n in searched["nodes"])
        assert_no_foreign_names(world, slug, [n["name"] for n in searched["nodes"]])

    async def call(i: int) -> None:
        slug = TENANTS[i % 3]
        other = TENANTS[(i + 1) % 3]
        # Two roles that see every customer of the tenant (partner apps see only what is
        # shared with them: tests/authz cover them).
        credential = world[slug].tokens["admin"] if i % 2 else world[slug].tokens["auditor"]
        kind = (i // 3) % 4
        if kind == 0:
            data = (await api.post(slug, credential, LIST)).ok()["customers"]
            assert data == alone[slug, "list"], (i, slug)
        elif kind == 1:
            data = (await api.post(slug, credential, SEARCH, {"s": "客户"})).ok()["customers"]
            assert data == alone[slug, "search"], (i, slug)
        elif kind == 2:
            own = world[slug].customers[i % len(world[slug].customers)]
            reply = await api.post(slug, credential, ONE, {"id": str(own["id"])})
            assert reply.ok()["customer"] == {"id": str(own["id"]), "name": own["name"]}
        else:  # another tenant's customer id, asked on this tenant: not found, no leak
            theirs = world[other].customers[i % len(world[other].customers)]
            reply = await api.post(slug, credential, ONE, {"id": str(theirs["id"])})
            assert reply.codes == ["NOT_FOUND"], (i, reply.body)
            assert theirs["name"] not in reply.text

    await asyncio.gather(*(call(i) for i in range(150)))


# --- 3. a half-migrated cluster: same query text, different table shapes ---------------

SHAPES = {
    "added_column": "ALTER TABLE customer ADD COLUMN legacy_code text",
    "changed_type": "ALTER TABLE customer ALTER COLUMN region TYPE varchar(64)",
}


@pytest.fixture
async def two_shapes(world: World, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Two fresh tenants whose ``customer`` tables differ (one was changed as its role)."""
    change = request.param
    slugs = (f"shape_{change}_old", f"shape_{change}_new")
    for slug in slugs:
        await drop_tenant(slug)
    try:
        old, new = [await create_tenant(slug, slug.title()) for slug in slugs]
        for tenant in (old, new):

            async def seed(tenant: TenantRef = tenant) -> None:
                for i in range(3):
                    await raw_connection().execute(
                        "INSERT INTO customer (kind, name, region) VALUES ('INDIVIDUAL', $1, $2)",
                        f"{tenant.slug}客户{i}",
                        "浙江省",
                    )

            await run_in_tenant(tenant, seed)

        async def alter() -> None:
            await current_db().execute_script(SHAPES[change])

        await run_in_tenant(new, alter)
        yield change, old, new
    finally:
        for slug in slugs:
            await drop_tenant(slug)


async def _alternate(
    old: TenantRef, new: TenantRef, rounds: int, run: Callable[[TenantRef], Awaitable[Any]]
) -> list[Any]:
    outcomes = []
    for i in range(rounds):
        tenant = (old, new)[i % 2]
        try:
            outcomes.append((tenant, await run(tenant)))
        except asyncpg.InvalidCachedStatementError as exc:
            outcomes.append((tenant, exc))
    return outcomes


@pytest.mark.parametrize("two_shapes", list(SHAPES), indirect=True)
async def test_half_migrated_cluster_retries_stale_statements(
    two_shapes: tuple[str, TenantRef, TenantRef], endpoints: Endpoints
) -> None:
    change, old, new = two_shapes
    query = "SELECT * FROM customer ORDER BY name"
    pids: set[int] = set()

    async def select() -> list[Any]:
        pids.add(await raw_connection().fetchval("SELECT pg_backend_pid()"))
        return list(await raw_connection().fetch(query))

    async with single_connection_default(endpoints):
        # Without the retry, the statement prepared for one shape fails for the other
        # (inside a transaction asyncpg cannot re-prepare by itself).
        async def once(tenant: TenantRef) -> list[Any]:
            async with tenant_transaction(tenant):
                return await select()

        unguarded = await _alternate(old, new, 10, once)
        failures = [o for o in unguarded if isinstance(o[1], asyncpg.InvalidCachedStatementError)]
        assert len(failures) >= 4, unguarded

        # run_in_tenant retries once with a fresh statement: nothing escapes, all correct.
        attempts = 0

        async def counted() -> list[Any]:
            nonlocal attempts
            attempts += 1
            return await select()

        guarded = await _alternate(old, new, 20, lambda t: run_in_tenant(t, counted))
    assert len(pids) == 1  # all of it on one connection
    assert attempts > 20  # the retry was exercised
    base_columns = len(next(rows for tenant, rows in guarded if tenant is old)[0])
    for tenant, rows in guarded:
        assert not isinstance(rows, Exception), (tenant.slug, rows)
        assert [row["name"] for row in rows] == [f"{tenant.slug}客户{i}" for i in range(3)]
        widened = tenant is new and change == "added_column"
        assert ("legacy_code" in dict(rows[0])) == widened
        assert len(rows[0]) == base_columns + widened
