"""startCustomerExport: only what the caller sees, masked as they see it, with a
watermark; the same errors as customers(where:) for unknown or hidden fields."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from dangan.devstack import Endpoints
from dangan.settings import Settings
from tests.support.api import Api
from tests.support.archive import START_EXPORT, forget_jobs, job, run_jobs
from tests.support.world import World

MASKED_ID = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")


@pytest.fixture
async def clean(settings: Settings, endpoints: Endpoints) -> AsyncIterator[None]:
    yield
    await forget_jobs(settings, endpoints)


async def export(api: Api, world: World, who: str, tenant: str = "alpha", **fields: Any) -> Any:
    variables = {"input": {"format": "CSV", **fields}}
    return await api.post(tenant, world[tenant].tokens[who], START_EXPORT, variables)


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        reply = await client.get(url)
    assert reply.status_code == 200
    return reply.content


async def test_sales_export_holds_only_their_customers_masked_with_a_watermark(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    alpha = world["alpha"]
    started = (await export(api, world, "sales")).ok()["startCustomerExport"]
    assert started["status"] == "QUEUED"
    await run_jobs(settings, endpoints)
    done = await job(api, "alpha", alpha.tokens["sales"], started["id"])
    assert done["status"] == "SUCCEEDED", done
    lines = list(csv.reader(io.StringIO((await download(done["downloadUrl"])).decode("utf-8-sig"))))
    mark, header, rows = lines[0][0], lines[1], lines[2:]
    assert mark.startswith("CONFIDENTIAL — for internal use")
    assert "alpha-sales <sales@alpha.test>" in mark and "tenant alpha" in mark
    assert f"rows: {len(rows)}" in mark
    for hidden in ("creditRating", "paymentCapacity", "annualRevenue"):
        assert hidden not in header
    records = [dict(zip(header, row, strict=True)) for row in rows]
    sales = alpha.people["sales"].identity_id
    mine = {str(c["id"]) for c in alpha.customers if c["owner_id"] == sales}
    assert {r["id"] for r in records} == mine
    person = next(r for r in records if r["kind"] == "INDIVIDUAL")
    assert MASKED_ID.match(person["idNumber"]), person["idNumber"]
    assert done["result"]["rows"] == len(rows)


async def test_xlsx_export_has_the_watermark_first(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    alpha = world["alpha"]
    started = (
        await export(api, world, "manager", format="XLSX", fields=["name", "creditRating"])
    ).ok()["startCustomerExport"]
    await run_jobs(settings, endpoints)
    done = await job(api, "alpha", alpha.tokens["manager"], started["id"])
    book = load_workbook(io.BytesIO(await download(done["downloadUrl"])), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert str(rows[0][0]).startswith("CONFIDENTIAL") and rows[1] == ("name", "creditRating")
    assert len(rows) - 2 == done["result"]["rows"] > 0


@pytest.mark.parametrize("name", ["creditRating", "noSuchField"])
async def test_hidden_or_unknown_field_is_the_same_bad_user_input(
    api: Api, world: World, clean: None, name: str
) -> None:
    by_fields = await export(api, world, "sales", fields=["name", name])
    assert by_fields.codes == ["BAD_USER_INPUT"]
    assert by_fields.errors[0]["message"] == f"unknown field {name!r}"
    assert by_fields.errors[0]["extensions"]["field"] == "fields[1]"
    by_where = await export(api, world, "sales", where=[{"field": name, "value": "A"}])
    assert by_where.codes == ["BAD_USER_INPUT"]
    assert by_where.errors[0]["message"] == f"unknown field {name!r}"
    assert by_where.errors[0]["extensions"]["field"] == "where[0].field"


async def test_others_cannot_read_the_job_or_its_download(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    alpha = world["alpha"]
    started = (await export(api, world, "sales")).ok()["startCustomerExport"]
    await run_jobs(settings, endpoints)
    other = await api.post(
        "alpha",
        alpha.tokens["sales2"],
        "query($id: ID!) { archiveJob(id: $id) { id } }",
        {"id": started["id"]},
    )
    assert other.codes == ["NOT_FOUND"]
    as_admin = await job(api, "alpha", alpha.tokens["admin"], started["id"])
    assert as_admin["status"] == "SUCCEEDED" and as_admin["downloadUrl"] is None
    elsewhere = await api.post(
        "gamma",
        world["gamma"].tokens["admin"],
        "query($id: ID!) { archiveJob(id: $id) { id } }",
        {"id": started["id"]},
    )
    assert elsewhere.codes == ["NOT_FOUND"]
    listed = await api.post("alpha", alpha.tokens["sales2"], "{ archiveJobs(kind: EXPORT) { id } }")
    assert started["id"] not in {j["id"] for j in listed.ok()["archiveJobs"]}


async def test_partner_apps_may_not_export(api: Api, world: World) -> None:
    reply = await api.post(
        "alpha", world["alpha"].keys["reader"], START_EXPORT, {"input": {"format": "CSV"}}
    )
    assert reply.codes == ["FORBIDDEN"]


PROFILE_FIELDS = (
    "category",
    "industry",
    "building",
    "city",
    "legalRepresentative",
    "scale",
    "registeredCapital",
    "potential",
    "competitionRisk",
    "status",
    "ratingGrade",
    "ratingScore",
)


async def test_the_profile_fields_are_exported_as_the_caller_sees_them(
    api: Api, world: World, settings: Settings, endpoints: Endpoints, clean: None
) -> None:
    alpha = world["alpha"]
    headers: dict[str, list[str]] = {}
    for who in ("manager", "auditor"):
        started = (await export(api, world, who)).ok()["startCustomerExport"]
        await run_jobs(settings, endpoints)
        done = await job(api, "alpha", alpha.tokens[who], started["id"])
        lines = list(
            csv.reader(io.StringIO((await download(done["downloadUrl"])).decode("utf-8-sig")))
        )
        headers[who] = lines[1]
        records = [dict(zip(lines[1], row, strict=True)) for row in lines[2:]]
        assert {r["status"] for r in records} == {"ACTIVE"}
    assert set(PROFILE_FIELDS) <= set(headers["manager"])
    # Business facts have no masked form: masked (the auditor) means left out.
    business = {"potential", "competitionRisk", "ratingGrade", "ratingScore"}
    assert set(PROFILE_FIELDS) - business <= set(headers["auditor"])
    assert not business & set(headers["auditor"])
    reply = await export(api, world, "auditor", fields=["name", "ratingGrade"])
    assert reply.errors[0]["extensions"]["field"] == "fields[1]"
