"""The duplicate finder against real tenant data: identifiers match exactly (after
normalisation), names by trigram similarity of their distinguishing part, and the
caller learns for each candidate only whether they may see it."""

from __future__ import annotations

from typing import Any

from dangan.services.customers.duplicates import (
    chinese_names_have_trigrams,
    explain_find_duplicates,
    find_duplicates,
)
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import World


async def _find(world: World, slug: str, who: str, values: dict[str, Any]) -> Any:
    tenant = world[slug]
    return await run_in_tenant(tenant.ref, lambda: find_duplicates(tenant.caller(who), values))


async def test_same_identifier_is_a_certain_duplicate(world: World) -> None:
    known = world["alpha"].customers[0]
    found = await _find(world, "alpha", "admin", {"id_number": known["id_number"]})
    assert [str(c.id) for c in found] == [str(known["id"])]
    assert found[0].certain and found[0].matched_on == ("id_number",)


async def test_similar_names_match(world: World) -> None:
    known = world["alpha"].customers[1]  # an enterprise: "alpha科技1有限公司"
    found = await _find(world, "alpha", "admin", {"name": "alpha 科技 1"})
    assert str(known["id"]) in {str(c.id) for c in found}
    hit = next(c for c in found if str(c.id) == str(known["id"]))
    assert hit.matched_on == ("name",) and not hit.certain and hit.name_similarity == 1.0
    assert await _find(world, "alpha", "admin", {"name": "完全不同的名字"}) == []


async def test_the_legal_form_does_not_count(world: World) -> None:
    async def dedup(name: str) -> Any:
        return await raw_connection().fetchval("SELECT dedup_name($1)", name)

    tenant = world["alpha"].ref
    assert await run_in_tenant(tenant, lambda: dedup("杭州 西湖科技股份有限公司")) == "杭州西湖科技"
    assert await run_in_tenant(tenant, lambda: dedup("Acme Trading 有限公司")) == "acmetrading"


async def test_other_tenants_are_never_candidates(world: World) -> None:
    known = world["alpha"].customers[0]
    found = await _find(world, "beta", "admin", {"id_number": known["id_number"]})
    assert found == []


async def test_candidates_say_whether_the_caller_may_see_them(world: World) -> None:
    known = world["alpha"].customers[0]
    owner_sees = await _find(world, "alpha", "admin", {"phone": known["phone"]})
    assert owner_sees[0].visible
    sales2 = await _find(world, "alpha", "sales2", {"phone": known["phone"]})
    assert sales2 and str(sales2[0].id) == str(known["id"])
    assert sales2[0].visible is False


async def test_the_database_sees_chinese_characters(db: None) -> None:
    """Checked at start-up: under LC_CTYPE "C" pg_trgm gives 李白 no trigrams at all."""
    assert await chinese_names_have_trigrams()


async def test_the_lookup_goes_through_the_indexes(world: World) -> None:
    tenant = world["alpha"]
    values = {"name": "某某科技", "phone": "13800000000", "id_number": "110101199003071234"}
    plan = await run_in_tenant(
        tenant.ref, lambda: explain_find_duplicates(tenant.caller("admin"), [values])
    )
    assert "customer_name_trgm" in plan and "customer_phone" in plan
    assert "Seq Scan on customer" not in plan
