"""Checking an import file batch by batch gives every row the outcome it would get on
its own: the file's identifiers are remembered across lookup batches, rows are never
duplicates of each other merely by a similar name, and progress is reported every `every` rows and at the last one."""

from __future__ import annotations

import random
from typing import Any

from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.imports.parsing import Sheet
from dangan.services.imports.validation import LOOKUP_BATCH, Checked, check_sheet
from dangan.tenants.scope import run_in_tenant
from tests.support.world import World


def _sheet(world: World) -> Sheet:
    rng = random.Random("import-checks")
    ids: list[str] = []
    while len(ids) < LOOKUP_BATCH + 1:
        candidate = make_id_number(rng, region="11")
        if candidate not in ids:
            ids.append(candidate)
    known = world["alpha"].customers[0]
    # Names alike on purpose (检查客户00001, 检查客户00002, …): not duplicates of each other.
    rows: list[tuple[int, list[Any]]] = [
        (n + 2, ["INDIVIDUAL", f"检查客户{n:05d}", "", ids[n]]) for n in range(LOOKUP_BATCH)
    ]
    last = LOOKUP_BATCH + 2
    rows += [
        (last, ["INDIVIDUAL", "检查客户甲", "", ids[3]]),  # in the file, one batch earlier
        (last + 1, ["INDIVIDUAL", "检查客户乙", known["phone"], ids[-1]]),  # existing phone
        (last + 2, ["INDIVIDUAL", "检查客户丙", "123", ""]),  # a bad cell
        (last + 3, ["INDIVIDUAL", "检查客户丁", make_mobile(rng), known["id_number"]]),
    ]
    return Sheet(header=["kind", "name", "phone", "idNumber"], rows=rows)


async def _check(world: World, allow_possible: bool) -> tuple[Checked, list[int]]:
    sheet = _sheet(world)
    reported: list[int] = []

    async def progress(done: int) -> None:
        reported.append(done)

    async def check() -> Checked:
        caller = world["alpha"].caller("admin")
        return await check_sheet(
            caller, sheet, allow_possible=allow_possible, every=200, progress=progress
        )

    return await run_in_tenant(world["alpha"].ref, check), reported


async def test_rows_are_checked_across_lookup_batches(world: World) -> None:
    known = world["alpha"].customers[0]
    checked, reported = await _check(world, allow_possible=False)
    last = LOOKUP_BATCH + 2
    assert checked.rows == LOOKUP_BATCH + 4
    assert [row.line for row in checked.valid] == list(range(2, LOOKUP_BATCH + 2))
    assert [(e.line, e.field) for e in checked.errors] == [
        (last, "idNumber"),
        (last + 1, "phone"),
        (last + 2, "phone"),
        (last + 3, "idNumber"),
    ]
    assert "line 5 of this file" in checked.errors[0].message
    assert checked.errors[1].candidates == (str(known["id"]),)
    assert checked.errors[3].candidates == (str(known["id"]),)
    assert checked.duplicate_lines == {last, last + 1, last + 3}
    assert checked.invalid_lines == {last + 2}
    assert reported == [200, 400, 504]


async def test_possible_duplicates_pass_when_allowed(world: World) -> None:
    checked, _ = await _check(world, allow_possible=True)
    last = LOOKUP_BATCH + 2
    assert [row.line for row in checked.valid][-1] == last + 1
    assert [(e.line, e.field) for e in checked.errors] == [
        (last, "idNumber"),
        (last + 2, "phone"),
        (last + 3, "idNumber"),
    ]
