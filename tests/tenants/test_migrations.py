"""Tenant migrations are versioned, recorded per schema, resumable; provisioning is atomic.

Tests that need a migration the code doesn't have yet patch ``TENANT_MIGRATIONS`` (every
module that imported it) and work on throwaway tenants (``mig_*``, ``prov_*``) only:
``migrate_all`` is pointed at those, so the session's world tenants (alpha, beta, gamma)
are never migrated, and the throwaway tenants are removed again at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import OperationalError

from dangan.services.errors import BadUserInput, Conflict
from dangan.tenants import migrations, provisioning, versions
from dangan.tenants.migrations import MigrationReport, migrate_all, migrate_platform, migrate_tenant
from dangan.tenants.names import check_slug, quote_ident, role_for, schema_for
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import TenantRef, current_db, raw_connection, run_in_tenant
from dangan.tenants.versions import TENANT_MIGRATIONS, Migration
from tests.support.tenants import drop_tenant
from tests.support.world import TENANTS, World

LATEST = TENANT_MIGRATIONS[-1].version

# A migration that changes several things; the last statement conflicts with a column a
# tenant already has, so there it fails after the first two statements succeeded.
V2_NOTES = Migration(
    LATEST + 1,
    "test notes",
    """
    ALTER TABLE customer ADD COLUMN test_note text;
    CREATE TABLE test_note_log (id serial PRIMARY KEY, note text NOT NULL);
    ALTER TABLE customer ADD COLUMN test_flag boolean NOT NULL DEFAULT false;
    """,
)


# --- helpers ------------------------------------------------------------------------


async def platform_rows(sql: str, *args: Any) -> list[dict[str, Any]]:
    _, rows = await connections.get("default").execute_query(sql, list(args))
    return [dict(row) for row in rows]


async def deployment_id() -> str:
    rows = await platform_rows("SELECT value FROM public.platform_meta WHERE key = 'deployment_id'")
    return str(rows[0]["value"])


async def role_exists(role: str) -> bool:
    return bool(await platform_rows("SELECT 1 FROM pg_roles WHERE rolname = $1", role))


async def schema_exists(schema: str) -> bool:
    return bool(await platform_rows("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


async def relations(schema: str) -> set[str]:
    """Tables, sequences and indexes in ``schema`` (from the catalogue: no privilege needed)."""
    rows = await platform_rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1",
        schema,
    )
    return {row["relname"] for row in rows}


async def columns(schema: str, table: str) -> dict[str, tuple[str, bool]]:
    """Column → (type, nullable), from the catalogue."""
    rows = await platform_rows(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS null"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        schema,
        table,
    )
    return {row["attname"]: (row["type"], row["null"]) for row in rows}


async def must_find(slug: str) -> TenantRef:
    tenant = await find_tenant(slug)
    assert tenant is not None, slug
    return tenant


async def platform_script(sql: str) -> None:
    await connections.get("default").execute_script(sql)


async def recorded(tenant: TenantRef) -> tuple[int, list[tuple[int, str]]]:
    """``public.tenant.schema_version`` and the schema's own ``schema_migration`` rows."""
    registry = await must_find(tenant.slug)

    async def read() -> list[tuple[int, str]]:
        rows = await raw_connection().fetch(
            "SELECT version, name FROM schema_migration ORDER BY version"
        )
        return [(row["version"], row["name"]) for row in rows]

    return registry.schema_version, await run_in_tenant(tenant, read)


def expected_records(migrations_: Sequence[Migration]) -> list[tuple[int, str]]:
    return [(m.version, m.name) for m in migrations_]


async def as_tenant(tenant: TenantRef, sql: str) -> None:
    async def work() -> None:
        await current_db().execute_script(sql)

    await run_in_tenant(tenant, work)


async def assert_nothing_left(slug: str, role: str) -> None:
    assert await find_tenant(slug) is None
    assert not await schema_exists(schema_for(slug))
    assert not await role_exists(role)


def patch_tenant_migrations(monkeypatch: pytest.MonkeyPatch, extra: Sequence[Migration]) -> None:
    """Every module that imported the list (and the derived latest version) sees ``extra``."""
    patched = (*TENANT_MIGRATIONS, *extra)
    for module in (versions, migrations, provisioning):
        monkeypatch.setattr(module, "TENANT_MIGRATIONS", patched)
    monkeypatch.setattr(versions, "LATEST_TENANT_VERSION", patched[-1].version)


def migrate_all_only(monkeypatch: pytest.MonkeyPatch, slugs: Sequence[str]) -> None:
    """Point ``migrate_all`` at the throwaway tenants (the registry, filtered)."""

    async def ours() -> list[TenantRef]:
        return [tenant for tenant in await list_tenants() if tenant.slug in slugs]

    monkeypatch.setattr(migrations, "list_tenants", ours)


@pytest.fixture
async def throwaway(world: World) -> AsyncIterator[list[str]]:
    """Slugs the test may create tenants under; they are removed afterwards."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        await drop_tenant(slug)


async def make_tenants(slugs: list[str], *wanted: str) -> list[TenantRef]:
    made = []
    for slug in wanted:
        await drop_tenant(slug)  # a leftover of an interrupted earlier test
        slugs.append(slug)
        made.append(await create_tenant(slug, f"{slug} Ltd"))
    return made


# --- recorded versions -------------------------------------------------------------------


async def test_world_tenants_are_recorded_at_the_latest_version(world: World) -> None:
    assert [m.version for m in TENANT_MIGRATIONS] == list(range(1, LATEST + 1))
    assert versions.LATEST_TENANT_VERSION == LATEST
    for slug in TENANTS:
        tenant = await must_find(slug)
        assert tenant.status == "active"
        assert (tenant.schema_name, tenant.role_name) == (
            schema_for(slug),
            role_for(slug, await deployment_id()),
        )
        assert await recorded(tenant) == (LATEST, expected_records(TENANT_MIGRATIONS))
        # Everything in the schema (and the schema) belongs to the tenant role, so its
        # migrations, run as that role, can change it.
        owners = await platform_rows(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
            tenant.schema_name,
        )
        assert owners == [{"owner": tenant.role_name}]
        schema_owner = await platform_rows(
            "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1",
            tenant.schema_name,
        )
        assert schema_owner == [{"owner": tenant.role_name}]


async def test_migrating_up_to_date_tenants_applies_nothing(world: World) -> None:
    alpha = world["alpha"].ref
    before = await recorded(alpha)
    seen: list[tuple[str, int]] = []
    assert await migrate_tenant(alpha, on_version=lambda t, v: seen.append((t.slug, v))) == 0
    assert seen == []
    assert await recorded(alpha) == before
    report = await migrate_all()
    assert report.versions_applied == 0
    assert report.tenants == len(await list_tenants()) >= len(TENANTS)
    assert await migrate_platform() == 0


# --- resumable migrate --all ------------------------------------------------------------


async def test_migrate_all_resumes_and_a_failing_schema_keeps_its_version(
    monkeypatch: pytest.MonkeyPatch, throwaway: list[str]
) -> None:
    slugs = ("mig_a", "mig_b", "mig_c")
    a, b, c = await make_tenants(throwaway, *slugs)
    world_before = {slug: await recorded(await must_find(slug)) for slug in TENANTS}
    # mig_c already has a column the new version adds: there it will fail midway.
    await as_tenant(c, "ALTER TABLE customer ADD COLUMN test_flag boolean")
    c_columns = await columns(c.schema_name, "customer")
    c_relations = await relations(c.schema_name)

    patch_tenant_migrations(monkeypatch, [V2_NOTES])
    migrate_all_only(monkeypatch, slugs)
    v1, v2 = expected_records(TENANT_MIGRATIONS), expected_records([*TENANT_MIGRATIONS, V2_NOTES])

    class Interrupted(Exception):
        pass

    # Run 1 is interrupted (Ctrl-C, a crash) right after the first schema.
    done: list[tuple[str, int]] = []

    def stop_after_first(tenant: TenantRef, count: int) -> None:
        done.append((tenant.slug, count))
        raise Interrupted

    with pytest.raises(Interrupted):
        await migrate_all(stop_after_first)
    assert done == [("mig_a", 1)]
    assert await recorded(a) == (LATEST + 1, v2)
    assert await recorded(b) == (LATEST, v1)

    # Run 2 resumes: mig_a is skipped, mig_b is migrated, mig_c fails on its conflict.
    done.clear()
    with pytest.raises(OperationalError) as info:
        await migrate_all(lambda t, n: done.append((t.slug, n)))
    assert isinstance(info.value.__cause__, asyncpg.DuplicateColumnError)
    assert done == [("mig_a", 0), ("mig_b", 1)]
    for tenant in (a, b):
        assert await recorded(tenant) == (LATEST + 1, v2)
        assert columns_have(await columns(tenant.schema_name, "customer"), "test_note", "test_flag")
        assert "test_note_log" in await relations(tenant.schema_name)
    # The failed version left nothing: not recorded, no new column, no new table.
    assert await recorded(c) == (LATEST, v1)
    assert await columns(c.schema_name, "customer") == c_columns
    assert await relations(c.schema_name) == c_relations

    # Fix the conflict; run 3 applies exactly the one missing version.
    await as_tenant(c, "ALTER TABLE customer DROP COLUMN test_flag")
    done.clear()
    report = await migrate_all(lambda t, n: done.append((t.slug, n)))
    assert report == MigrationReport(tenants=3, versions_applied=1)
    assert done == [("mig_a", 0), ("mig_b", 0), ("mig_c", 1)]
    for tenant in (a, b, c):
        assert await recorded(tenant) == (LATEST + 1, v2)
        test_flag = (await columns(tenant.schema_name, "customer"))["test_flag"]
        assert test_flag == ("boolean", False)
    assert await migrate_all() == MigrationReport(tenants=3, versions_applied=0)

    # The world tenants were never touched.
    for slug in TENANTS:
        tenant = await must_find(slug)
        assert await recorded(tenant) == world_before[slug]
        assert "test_note" not in await columns(tenant.schema_name, "customer")


def columns_have(found: dict[str, tuple[str, bool]], *names: str) -> bool:
    return all(name in found for name in names)


async def test_concurrent_runners_apply_each_version_once(
    monkeypatch: pytest.MonkeyPatch, throwaway: list[str]
) -> None:
    (tenant,) = await make_tenants(throwaway, "mig_race")
    patch_tenant_migrations(monkeypatch, [V2_NOTES])
    progress: list[int] = []
    counts = await asyncio.gather(
        *(migrate_tenant(tenant, on_version=lambda t, v: progress.append(v)) for _ in range(4))
    )
    assert sorted(counts) == [0, 0, 0, 1]
    assert progress == [LATEST + 1]
    assert await recorded(tenant) == (
        LATEST + 1,
        expected_records([*TENANT_MIGRATIONS, V2_NOTES]),
    )


async def test_new_tenants_get_every_version(
    monkeypatch: pytest.MonkeyPatch, throwaway: list[str]
) -> None:
    patch_tenant_migrations(monkeypatch, [V2_NOTES])
    (tenant,) = await make_tenants(throwaway, "mig_new")
    assert tenant.schema_version == LATEST + 1
    assert await recorded(tenant) == (
        LATEST + 1,
        expected_records([*TENANT_MIGRATIONS, V2_NOTES]),
    )
    assert (await must_find("mig_new")).status == "active"
    assert await migrate_tenant(tenant) == 0


# --- provisioning is atomic --------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    [
        "A",
        "1abc",
        "a",
        "a-b",
        "x" * 42,
        "robert'); drop",
        "",
        "Alpha",
        "alpha\n",
        " alpha",
        "alpha beta",
        "t_alpha;",
        "ａｌｐｈａ",
        "alphä",
    ],
)
async def test_bad_slugs_are_refused_naming_the_field(world: World, slug: str) -> None:
    before = await platform_rows("SELECT count(*) AS n FROM public.tenant")
    with pytest.raises(BadUserInput) as info:
        await create_tenant(slug, "Some Ltd")
    assert info.value.field == "slug"
    assert info.value.code == "BAD_USER_INPUT"
    assert await platform_rows("SELECT count(*) AS n FROM public.tenant") == before


def test_slug_length_bounds() -> None:
    assert check_slug("ab") == "ab"
    assert check_slug("x" * 41) == "x" * 41
    assert check_slug("a_1") == "a_1"
    with pytest.raises(BadUserInput):
        check_slug("x" * 42)


async def test_empty_name_is_refused(world: World) -> None:
    with pytest.raises(BadUserInput) as info:
        await create_tenant("prov_noname", "   ")
    assert info.value.field == "name"
    assert await find_tenant("prov_noname") is None


async def test_duplicate_slug_is_a_conflict(world: World) -> None:
    alpha = world["alpha"].ref
    with pytest.raises(Conflict) as info:
        await create_tenant("alpha", "Alpha again")
    assert info.value.field == "slug"
    assert (await must_find("alpha")).id == alpha.id


async def test_concurrent_creation_of_one_slug_is_one_tenant_and_a_conflict(
    throwaway: list[str],
) -> None:
    slug = "prov_race"
    await drop_tenant(slug)
    throwaway.append(slug)
    outcomes = await asyncio.gather(
        *(create_tenant(slug, f"Race {i}") for i in range(3)), return_exceptions=True
    )
    made = [o for o in outcomes if isinstance(o, TenantRef)]
    assert len(made) == 1, outcomes
    assert all(isinstance(o, Conflict) and o.field == "slug" for o in outcomes if o not in made), (
        outcomes
    )
    assert (await find_tenant(slug)) == made[0]


async def test_failing_migration_leaves_no_tenant_schema_or_role(
    monkeypatch: pytest.MonkeyPatch, world: World
) -> None:
    slug = "prov_badsql"
    role = role_for(slug, await deployment_id())
    broken = Migration(
        LATEST + 1,
        "broken",
        "CREATE TABLE test_ok (id integer); SELECT * FROM no_such_table;",
    )
    patch_tenant_migrations(monkeypatch, [broken])
    with pytest.raises(OperationalError) as info:
        await create_tenant(slug, "Broken Ltd")
    assert isinstance(info.value.__cause__, asyncpg.UndefinedTableError)
    # Role, schema, version 1's tables and the registry row were all made, then undone.
    await assert_nothing_left(slug, role)


async def test_taken_role_name_leaves_nothing(world: World) -> None:
    slug = "prov_role"
    role = role_for(slug, await deployment_id())
    await platform_script(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
    try:
        with pytest.raises(OperationalError) as info:
            await create_tenant(slug, "Role Ltd")
        assert isinstance(info.value.__cause__, asyncpg.DuplicateObjectError)
        assert await find_tenant(slug) is None
        assert not await schema_exists(schema_for(slug))
    finally:
        await platform_script(f"DROP ROLE {quote_ident(role)}")


async def test_taken_schema_name_leaves_nothing(world: World) -> None:
    slug = "prov_schema"
    role = role_for(slug, await deployment_id())
    await platform_script(f"CREATE SCHEMA {quote_ident(schema_for(slug))}")
    try:
        with pytest.raises(OperationalError) as info:
            await create_tenant(slug, "Schema Ltd")
        assert isinstance(info.value.__cause__, asyncpg.DuplicateSchemaError)
        assert await find_tenant(slug) is None
        assert not await role_exists(role)  # created in the same transaction, undone
        assert await relations(schema_for(slug)) == set()
    finally:
        await platform_script(f"DROP SCHEMA {quote_ident(schema_for(slug))}")
    await assert_nothing_left(slug, role)
