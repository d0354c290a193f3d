"""The batched duplicate finder (one statement for many rows, as imports use it) gives
each row exactly what the one-row finder gives it, and never compares the rows of a
batch with each other: they are not customers yet."""

from __future__ import annotations

import random
from typing import Any

from dangan.services.customers.duplicates import find_duplicates, find_duplicates_many
from dangan.services.identifiers import make_id_number
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import World

NEW_ID_NUMBER = make_id_number(random.Random("batch-finder"), region="11")


def _rows(world: World) -> list[dict[str, Any]]:
    alpha = world["alpha"].customers
    return [
        {"id_number": alpha[0]["id_number"]},  # the same identifier
        {"name": "alpha 科技 1"},  # a similar name (alpha科技1有限公司, and look-alikes)
        {"name": "完全不同的名字"},  # no match
        {"phone": alpha[2]["phone"], "name": "alpha客户2"},  # phone and name, one customer
        {"uscc": alpha[1]["uscc"], "phone": alpha[0]["phone"]},  # two customers
        {},  # nothing to look up by
        {"name": "批内重复客户", "id_number": NEW_ID_NUMBER},  # twice in the batch, not in
        {"name": "批内重复客户", "id_number": NEW_ID_NUMBER},  # the table: no match
        {"id_number": alpha[0]["id_number"], "phone": "", "uscc": None},  # blanks ignored
        {"id_number": world["beta"].customers[0]["id_number"]},  # another tenant's
    ]


async def _both(world: World, who: str, **options: Any) -> tuple[list[Any], list[Any]]:
    tenant = world["alpha"]
    caller = tenant.caller(who)
    rows = _rows(world)

    async def batched() -> list[Any]:
        return await find_duplicates_many(caller, rows, **options)

    async def one_by_one() -> list[Any]:
        exclude = options.get("exclude", (None,))[0]
        return [await find_duplicates(caller, row, exclude=exclude) for row in rows]

    return await run_in_tenant(tenant.ref, batched), await run_in_tenant(tenant.ref, one_by_one)


async def test_a_batch_gets_the_answers_of_one_row_lookups(world: World) -> None:
    alpha = world["alpha"].customers
    batched, single = await _both(world, "admin")
    assert batched == single
    ids = [[str(c.id) for c in found] for found in batched]
    assert ids[0] == [str(alpha[0]["id"])] and batched[0][0].certain
    assert str(alpha[1]["id"]) in ids[1]
    assert all(c.matched_on == ("name",) for c in batched[1])
    assert ids[2] == []
    assert ids[3][0] == str(alpha[2]["id"]) and batched[3][0].matched_on == ("phone", "name")
    assert ids[4][:2] == [str(alpha[1]["id"]), str(alpha[0]["id"])]
    assert batched[4][0].matched_on == ("uscc",) and batched[4][1].matched_on == ("phone",)
    assert ids[5] == [] and ids[6] == [] and ids[7] == [] and ids[9] == []
    assert ids[8] == [str(alpha[0]["id"])]
    assert all(c.visible for found in batched for c in found)


async def test_candidates_the_caller_cannot_see_are_flagged_alike(world: World) -> None:
    alpha = world["alpha"].customers
    batched, single = await _both(world, "sales2")
    assert batched == single
    # alpha[0] belongs to sales; sales2 owns alpha[1] (owners rotate sales, sales2, manager).
    first = batched[0][0]
    assert str(first.id) == str(alpha[0]["id"]) and first.visible is False
    by_id = {str(c.id): c.visible for c in batched[4]}
    assert by_id == {str(alpha[1]["id"]): True, str(alpha[0]["id"]): False}


async def test_excluded_customers_are_never_candidates(world: World) -> None:
    alpha = world["alpha"].customers
    batched, single = await _both(world, "admin", exclude=(alpha[0]["id"],))
    assert batched == single
    assert batched[0] == [] and batched[8] == []
    assert [str(c.id) for c in batched[4]] == [str(alpha[1]["id"])]


async def test_the_limit_applies_to_each_row(world: World) -> None:
    tenant = world["alpha"]
    rows = [{"name": "alpha客户"}, {"name": "alpha客户"}]

    async def batched() -> list[Any]:
        return await find_duplicates_many(tenant.caller("admin"), rows, limit_per_row=2)

    found = await run_in_tenant(tenant.ref, batched)
    assert [len(candidates) for candidates in found] == [2, 2] and found[0] == found[1]


async def test_the_planner_setting_is_restored_after_the_lookup(world: World) -> None:
    tenant = world["alpha"]

    async def lookup_then_setting() -> Any:
        await raw_connection().execute("SELECT set_config('enable_seqscan', 'on', true)")
        await find_duplicates(tenant.caller("admin"), {"name": "alpha客户"})
        return await raw_connection().fetchval("SELECT current_setting('enable_seqscan')")

    assert await run_in_tenant(tenant.ref, lookup_then_setting) == "on"
