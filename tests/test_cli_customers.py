"""``dangan customers import | export``: the API's archive jobs run by the command, as a
member of a throwaway tenant, seen afterwards through the API.

The command runs as a subprocess of this checkout's code (``python -c``, the package on
PYTHONPATH), pointed at this run's stack like tests/test_cli.py.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dangan.devstack import Endpoints
from dangan.services.callers import Caller
from dangan.services.customers import create_customer
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.people import Person, caller_for, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.graphql.test_import import MARK, two_bad_rows
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.test_cli import cli_env

SLUG = "cli_customers"
ROOT = Path(__file__).resolve().parents[1]
MASKED_ID = r"^\d{6}\*{8}\d{3}[\dX]$"
JOB = "query($id: ID!) { archiveJob(id: $id) { kind status stage done total result } }"


@dataclass
class Scratch:
    ref: TenantRef
    people: dict[str, Person]
    env: dict[str, str]
    settings: Settings

    def caller(self, who: str) -> Caller:
        return caller_for(self.ref, self.people[who])

    def token(self, who: str) -> str:
        identity = self.people[who].identity_id
        return issue_token(identity, SLUG, secret=self.settings.secret_key, ttl_seconds=600).token

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", "from dangan.cli import app; app(prog_name='dangan')", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    async def sql(self, query: str, *params: Any) -> list[Any]:
        return await run_in_tenant(self.ref, lambda: raw_connection().fetch(query, *params))


@pytest.fixture(scope="module")
async def scratch(
    world: Any, settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scratch]:
    """A tenant with an admin and two salespeople; two customers each for the latter."""
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "CLI Customers Ltd")
    people = {
        who: await create_user(ref, f"{who}@cli-customers.test", [role], department="销售部")
        for who, role in (("admin", "admin"), ("sales", "sales"), ("sales2", "sales"))
    }
    rng = random.Random("cli-customers")
    admin = caller_for(ref, people["admin"])
    for index, owner in enumerate(["sales", "sales", "sales2", "sales2"]):
        values = {
            "kind": "INDIVIDUAL",
            "name": f"命令行客户{index}",
            "phone": make_mobile(rng),
            "id_number": make_id_number(rng, region="33"),
            "owner_id": people[owner].identity_id,
        }

        async def make(values: dict[str, Any] = values) -> Any:
            return await create_customer(admin, values, allow_possible_duplicate=True)

        await run_in_tenant(ref, make)
    env = cli_env(settings, endpoints, tmp_path_factory.mktemp("clicustomers") / "data")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    yield Scratch(ref, people, env, settings)
    await drop_tenant(SLUG)


@pytest.fixture
async def clean(scratch: Scratch) -> AsyncIterator[None]:
    yield
    await scratch.sql("DELETE FROM customer WHERE name LIKE $1", f"{MARK}%")
    await scratch.sql("DELETE FROM archive_setting")


def _csv(tmp_path: Path, rows: list[list[Any]]) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    path = tmp_path / "customers.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _import(scratch: Scratch, file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return scratch.run(
        "customers", "import", "--tenant", SLUG, "--email", "sales@cli-customers.test",
        str(file), *args,
    )  # fmt: skip


def _job_id(stdout: str, kind: str) -> str:
    return stdout.split(f"{kind} ", 1)[1].split(":", 1)[0]


async def test_validate_only_reports_the_bad_lines_and_writes_nothing(
    scratch: Scratch, api: Api, tmp_path: Path, clean: None
) -> None:
    rows, _ = two_bad_rows()
    report = tmp_path / "errors.csv"
    done = _import(scratch, _csv(tmp_path, rows), "--report", str(report))
    assert done.returncode == 0, done.stderr
    assert "rows 4, valid 2, imported 0, errors 3, duplicates 0" in done.stdout
    table = [line.split("│")[1:4] for line in done.stdout.splitlines() if line.count("│") >= 4]
    assert {(cells[0].strip(), cells[1].strip()) for cells in table} == {
        ("3", "phone"),
        ("5", "idNumber"),
        ("5", "region"),
    }
    written = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert written[0] == ["line", "field", "message", "candidates"]
    assert {(line, field) for line, field, *_ in written[1:]} == {
        ("3", "phone"),
        ("5", "idNumber"),
        ("5", "region"),
    }
    assert await scratch.sql("SELECT id FROM customer WHERE name LIKE $1", f"{MARK}%") == []
    job_id = _job_id(done.stdout, "import")
    seen = (await api.post(SLUG, scratch.token("sales"), JOB, {"id": job_id})).ok()["archiveJob"]
    assert (seen["kind"], seen["status"], seen["stage"]) == ("IMPORT", "SUCCEEDED", "checking")
    assert (seen["done"], seen["total"], seen["result"]["errors"]) == (4, 4, 3)
    hidden = await api.post(SLUG, scratch.token("sales2"), JOB, {"id": job_id})
    assert hidden.codes == ["NOT_FOUND"]


async def test_import_valid_rows_writes_them_as_the_member(
    scratch: Scratch, api: Api, tmp_path: Path, clean: None
) -> None:
    rows, good = two_bad_rows()
    done = _import(scratch, _csv(tmp_path, rows), "--mode", "import_valid_rows")
    assert done.returncode == 0, done.stderr
    assert "rows 4, valid 2, imported 2, errors 3" in done.stdout
    written = await scratch.sql(
        "SELECT name, owner_id FROM customer WHERE name LIKE $1 ORDER BY name", f"{MARK}%"
    )
    sales = scratch.people["sales"].identity_id
    assert [(row["name"], row["owner_id"]) for row in written] == [(n, sales) for n in sorted(good)]
    listed = await api.post(SLUG, scratch.token("sales"), "{ archiveJobs(kind: IMPORT) { id } }")
    job_id = _job_id(done.stdout, "import")
    assert job_id in {job["id"] for job in listed.ok()["archiveJobs"]}
    seen = (await api.post(SLUG, scratch.token("sales"), JOB, {"id": job_id})).ok()["archiveJob"]
    assert (seen["status"], seen["stage"], seen["result"]["imported"]) == (
        "SUCCEEDED",
        "writing",
        2,
    )


async def test_import_if_all_valid_exits_1_and_writes_nothing(
    scratch: Scratch, tmp_path: Path, clean: None
) -> None:
    rows, _ = two_bad_rows()
    done = _import(scratch, _csv(tmp_path, rows), "--mode", "IMPORT_IF_ALL_VALID")
    assert done.returncode == 1
    assert "imported 0, errors 3" in done.stdout and "nothing imported" in done.stderr
    assert await scratch.sql("SELECT id FROM customer WHERE name LIKE $1", f"{MARK}%") == []


async def test_sales_export_is_their_customers_masked_under_the_watermark(
    scratch: Scratch, endpoints: Endpoints, settings: Settings, tmp_path: Path, clean: None
) -> None:
    out = tmp_path / "out.csv"
    done = scratch.run(
        "customers", "export", "--tenant", SLUG, "--email", "sales@cli-customers.test",
        "--fields", "name,idNumber,ownerId", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"2 row(s) written to {out}" in done.stdout
    lines = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    mark, header, rows = lines[0][0], lines[1], lines[2:]
    assert mark.startswith("CONFIDENTIAL — for internal use") and f"tenant {SLUG}" in mark
    assert "<sales@cli-customers.test>" in mark and "rows: 2" in mark
    assert header == ["name", "idNumber", "ownerId"]
    sales = str(scratch.people["sales"].identity_id)
    assert sorted(row[0] for row in rows) == ["命令行客户0", "命令行客户1"]
    assert all(row[2] == sales for row in rows)
    assert all(re.match(MASKED_ID, row[1]) for row in rows), rows
    (job,) = await scratch.sql(
        "SELECT object_key, status FROM archive_job WHERE id = $1::uuid",
        _job_id(done.stdout, "export"),
    )
    assert job["status"] == "SUCCEEDED"
    stored = await ObjectStore(s3_client(endpoints), settings.s3_bucket).get_bytes(
        job["object_key"]
    )
    assert out.read_bytes() == stored


async def test_export_above_the_threshold_waits_and_writes_no_file(
    scratch: Scratch, tmp_path: Path, clean: None
) -> None:
    await scratch.sql(
        "INSERT INTO archive_setting (key, value) VALUES ('export_approval_threshold', '1')"
    )
    out = tmp_path / "out.xlsx"
    done = scratch.run(
        "customers", "export", "--tenant", SLUG, "--email", "admin@cli-customers.test",
        "--format", "xlsx", str(out),
    )  # fmt: skip
    assert done.returncode == 3
    assert "waits for an admin or manager" in done.stderr and not out.exists()
    waiting = await scratch.sql("SELECT id FROM archive_job WHERE status = 'AWAITING_APPROVAL'")
    assert str(waiting[0]["id"]) in done.stderr


SALES = ("--tenant", SLUG, "--email", "sales@cli-customers.test")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tenant", SLUG, "--email", "nobody@cli-customers.test", "GOOD"), "nobody@cli-customers.test is not an active member"),
        (("--tenant", "no_such_tenant", "--email", "sales@cli-customers.test", "GOOD"), "no tenant named 'no_such_tenant'"),
        ((*SALES, "--mode", "WRITE_EVERYTHING", "GOOD"), "--mode must be one of"),
        ((*SALES, "MISSING"), "cannot read"),
        ((*SALES, "TEXT"), "must end in .csv or .xlsx"),
    ],
)  # fmt: skip
async def test_bad_import_arguments_are_one_clean_line(
    scratch: Scratch, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "customers.txt").write_text("name\n")
    files = {
        "GOOD": str(_csv(tmp_path, [["name"], [f"{MARK}x"]])),
        "MISSING": str(tmp_path / "missing.csv"),
        "TEXT": str(tmp_path / "customers.txt"),
    }
    done = scratch.run("customers", "import", *(files.get(arg, arg) for arg in args))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "--format must be csv or xlsx"),
        (("--fields", "name,creditRating"), "unknown field 'creditRating'"),
    ],
)
async def test_bad_export_arguments_are_one_clean_line(
    scratch: Scratch, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "out.csv"
    done = scratch.run("customers", "export", *SALES, *args, str(out))
    assert done.returncode == 2 and not out.exists()
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
