"""startCustomerImport: every bad row reported by line and field; only the chosen mode
writes; duplicates flagged, never merged; the caller's policy applies to every row."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dangan.devstack import Endpoints
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.archive import START_IMPORT, csv_file, forget_jobs, job, run_jobs, xlsx_file
from tests.support.world import World

MARK = "导入"
HEADER = ["kind", "客户名称", "phone", "idNumber", "region", "tags"]


@pytest.fixture
async def clean(world: World, settings: Settings, endpoints: Endpoints) -> AsyncIterator[None]:
    yield
    for slug in ("alpha", "beta"):

        async def drop() -> None:
            await raw_connection().execute("DELETE FROM customer WHERE name LIKE $1", f"{MARK}%")

        await run_in_tenant(world[slug].ref, drop)
    await forget_jobs(settings, endpoints)


def _name() -> str:
    return f"{MARK}{uuid.uuid4().hex}"


def two_bad_rows() -> tuple[list[list[Any]], list[str]]:
    """Five lines: header, good, bad phone, good, bad ID number and region."""
    rng = random.Random()
    good = [_name(), _name()]
    rows = [
        HEADER,
        [
            "INDIVIDUAL",
            good[0],
            make_mobile(rng),
            make_id_number(rng, region="11"),
            "北京市",
            "a;b",
        ],
        ["INDIVIDUAL", _name(), "12345", "", "北京市", ""],
        ["个人客户", good[1], "", "", "浙江省", ""],
        ["INDIVIDUAL", _name(), "", "110101199001011230", "火星", ""],
    ]
    return rows, good


async def start(api: Api, world: World, who: str, content: str, **extra: Any) -> Any:
    variables = {"input": {"filename": "customers.csv", "contentBase64": content, **extra}}
    variables["input"].setdefault("format", "CSV")
    return await api.post("alpha", world["alpha"].tokens[who], START_IMPORT, variables)


async def imported(world: World, slug: str = "alpha") -> list[Any]:
    async def rows() -> list[Any]:
        return await raw_connection().fetch(
            "SELECT c.id, c.name, c.owner_id, c.tags, c.id_number,"
            " (SELECT count(*) FROM customer_change h WHERE h.customer_id = c.id"
            "  AND h.action = 'create' AND h.actor_id = c.owner_id) AS changes"
            " FROM customer c WHERE c.name LIKE $1 ORDER BY c.name",
            f"{MARK}%",
        )

    return await run_in_tenant(world[slug].ref, rows)


def errors_of(result: dict[str, Any]) -> set[tuple[int, str | None]]:
    return {(e["line"], e["field"]) for e in result["errorList"]}


EXPECTED = {(3, "phone"), (5, "idNumber"), (5, "region")}


@pytest.mark.parametrize("kind", ["CSV", "XLSX"])
async def test_validate_only_reports_every_bad_line_and_writes_nothing(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None, kind: str
) -> None:
    rows, _ = two_bad_rows()
    content = csv_file(rows) if kind == "CSV" else xlsx_file(rows)
    started = (await start(api, world, "sales", content, format=kind)).ok()["startCustomerImport"]
    assert started["status"] == "QUEUED"
    await run_jobs(settings, endpoints)
    done = await job(api, "alpha", world["alpha"].tokens["sales"], started["id"])
    assert done["status"] == "SUCCEEDED", done
    result = done["result"]
    assert errors_of(result) == EXPECTED
    assert (result["rows"], result["valid"], result["invalid"], result["imported"]) == (4, 2, 2, 0)
    assert (done["done"], done["total"]) == (4, 4)
    assert await imported(world) == []
    assert done["downloadUrl"]  # the error report, for the requester


async def test_import_if_all_valid_writes_nothing_when_a_row_is_bad(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    rows, _ = two_bad_rows()
    started = (await start(api, world, "sales", csv_file(rows), mode="IMPORT_IF_ALL_VALID")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["sales"], started["startCustomerImport"]["id"]
    )
    assert done["status"] == "SUCCEEDED" and done["result"]["imported"] == 0
    assert errors_of(done["result"]) == EXPECTED
    assert await imported(world) == []


async def test_import_valid_rows_writes_them_owned_by_the_importer_with_changes(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    rows, good = two_bad_rows()
    started = (await start(api, world, "sales", csv_file(rows), mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["sales"], started["startCustomerImport"]["id"]
    )
    assert done["status"] == "SUCCEEDED" and done["result"]["imported"] == 2, done
    found = await imported(world)
    sales = world["alpha"].people["sales"].identity_id
    assert sorted(row["name"] for row in found) == sorted(good)
    assert all(row["owner_id"] == sales and row["changes"] == 1 for row in found)
    assert {tuple(row["tags"]) for row in found} == {("a", "b"), ()}
    # Run again (arq delivers at least once): nothing is created twice.
    await run_jobs(settings, endpoints)
    assert len(await imported(world)) == 2


async def test_duplicates_are_flagged_never_merged_and_hidden_ones_not_identified(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    alpha = world["alpha"]
    mine, not_mine = alpha.customers[0], alpha.customers[1]  # sales owns 0, sales2 owns 1
    rng = random.Random()
    twin = make_id_number(rng, region="11")
    rows = [
        ["kind", "name", "idNumber", "uscc"],
        ["INDIVIDUAL", _name(), mine["id_number"], ""],
        ["ENTERPRISE", _name(), "", not_mine["uscc"]],
        ["INDIVIDUAL", _name(), twin, ""],
        ["INDIVIDUAL", _name(), twin, ""],
    ]
    started = (await start(api, world, "sales", csv_file(rows), mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(api, "alpha", alpha.tokens["sales"], started["startCustomerImport"]["id"])
    result = done["result"]
    by_line = {e["line"]: e for e in result["errorList"]}
    assert set(by_line) == {2, 3, 5} and result["duplicates"] == 3
    # Sales see their own customer's ID number masked, without the right to match it.
    assert by_line[2]["field"] is None and "candidates" not in by_line[2]
    assert "not visible to you" in by_line[2]["message"] and str(mine["id"]) not in str(result)
    assert by_line[3]["field"] is None and "not visible to you" in by_line[3]["message"]
    assert "candidates" not in by_line[3] and str(not_mine["id"]) not in str(result)
    assert "line 4" in by_line[5]["message"]
    assert [row["id_number"] for row in await imported(world)] == [twin]


async def test_dictionary_codes_and_cities_are_checked_as_create_customer_does(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    good = _name()
    rows = [
        ["kind", "name", "category", "region", "city"],
        ["ENTERPRISE", _name(), "NOSUCHCODE", "北京市", "杭州市"],
        ["ENTERPRISE", good, "", "浙江省", "杭州市"],
    ]
    started = (await start(api, world, "admin", csv_file(rows), mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["admin"], started["startCustomerImport"]["id"]
    )
    assert errors_of(done["result"]) == {(2, "category"), (2, "city")}, done
    assert done["result"]["imported"] == 1
    assert [row["name"] for row in await imported(world)] == [good]


async def test_a_duplicate_is_named_only_on_a_field_the_caller_may_match_exactly(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    # The manager sees customer 0 (their department's) with its ID number masked and no
    # right to match it: guessing the full number must not confirm whose it is.
    known = world["alpha"].customers[0]
    rows = [
        ["kind", "name", "idNumber", "phone"],
        ["INDIVIDUAL", _name(), known["id_number"], ""],
        ["INDIVIDUAL", _name(), "", known["phone"]],
    ]
    started = (await start(api, world, "manager", csv_file(rows))).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["manager"], started["startCustomerImport"]["id"]
    )
    by_line = {e["line"]: e for e in done["result"]["errorList"]}
    assert set(by_line) == {2, 3} and done["result"]["duplicates"] == 2
    assert by_line[2]["field"] is None and "candidates" not in by_line[2]
    assert "idNumber" not in by_line[2]["message"] and str(known["id"]) not in str(by_line[2])
    assert "not visible to you" in by_line[2]["message"]
    # The phone number they see in full: that match is named, with the customer.
    assert by_line[3]["field"] == "phone" and by_line[3]["candidates"] == [str(known["id"])]


async def test_a_row_the_policy_refuses_rolls_back_its_batch(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    # A salesperson may not create a customer for a colleague: they couldn't see it.
    colleague = world["alpha"].people["sales2"].identity_id
    rows = [
        ["kind", "name", "ownerId"],
        ["ENTERPRISE", _name(), ""],
        ["ENTERPRISE", _name(), str(colleague)],
    ]
    started = (await start(api, world, "sales", csv_file(rows), mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["sales"], started["startCustomerImport"]["id"]
    )
    assert done["status"] == "SUCCEEDED" and done["result"]["imported"] == 0
    assert done["result"]["refusedBatches"] == [
        {"lines": [2, 3], "message": "line 3: your access does not allow creating this customer"}
    ]
    assert await imported(world) == []


async def test_unknown_column_is_named_and_nothing_written(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    rows = [["kind", "name", "favouriteColour"], ["INDIVIDUAL", _name(), "blue"]]
    started = (await start(api, world, "admin", csv_file(rows), mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["admin"], started["startCustomerImport"]["id"]
    )
    assert done["result"]["errorList"] == [
        {"line": 1, "field": "favouriteColour", "message": "unknown column 'favouriteColour'"}
    ]
    assert await imported(world) == []


async def test_gb18030_csv_is_read(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    import base64

    name = _name()
    text = f"客户类型,客户名称,地区\n企业客户,{name},北京市\n"
    content = base64.b64encode(text.encode("gb18030")).decode()
    started = (await start(api, world, "admin", content, mode="IMPORT_VALID_ROWS")).ok()
    await run_jobs(settings, endpoints)
    done = await job(
        api, "alpha", world["alpha"].tokens["admin"], started["startCustomerImport"]["id"]
    )
    assert done["result"]["imported"] == 1, done
    assert [row["name"] for row in await imported(world)] == [name]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"contentBase64": "not base64!"}, "contentBase64"),
        ({"contentBase64": "A" * (10 * 1024 * 1024 * 4 // 3 + 16)}, "contentBase64"),
        ({"contentBase64": csv_file([["kind"]]), "format": "XLSX"}, "contentBase64"),
        ({"filename": ""}, "filename"),
    ],
)
async def test_bad_input_is_named(
    api: Api, world: World, clean: None, extra: dict[str, Any], field: str
) -> None:
    content = extra.pop("contentBase64", csv_file([["kind", "name"]]))
    reply = await start(api, world, "sales", content, **extra)
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field


async def test_unknown_format_is_named(api: Api, world: World) -> None:
    reply = await start(api, world, "sales", csv_file([["kind"]]), format="PDF")
    assert reply.codes == ["BAD_USER_INPUT"] and "format" in reply.errors[0]["message"]


async def test_auditor_may_not_import(api: Api, world: World) -> None:
    reply = await start(api, world, "auditor", csv_file([["kind", "name"]]))
    assert reply.codes == ["FORBIDDEN"]
