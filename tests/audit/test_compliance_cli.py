"""``dangan audit report``: the same report as the API's, written to a file by an
operator, and recorded in the trail as the command ``audit.report``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.audit.reports import clock, csv_tables, report_file
from tests.support.api import Api
from tests.support.world import World
from tests.test_cli import cli_env

DANGAN = Path(sys.executable).parent / "dangan"


@pytest.fixture(scope="module")
def env(
    settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return cli_env(settings, endpoints, tmp_path_factory.mktemp("clireport") / "data")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(DANGAN), "audit", "report", *args], env=env, capture_output=True, text=True, timeout=90
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


async def test_the_command_writes_the_reports_figures_and_is_recorded(
    api: Api, world: World, env: dict[str, str], tmp_path: Path
) -> None:
    alpha = world["alpha"]
    start = await clock(alpha.ref)
    (
        await api.post("alpha", alpha.tokens["sales"], "{ customers(first: 3) { nodes { id } } }")
    ).ok()
    end = await clock(alpha.ref)
    out = tmp_path / "report.csv"

    done = _run(
        env,
        "--tenant",
        "alpha",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--format",
        "csv",
        "--out",
        str(out),
    )

    assert done.returncode == 0, done.stderr
    assert "1 event(s) in the period; audit chain OK" in done.stdout
    from_cli = csv_tables(out.read_bytes())
    _, data = await report_file(api, alpha, start, end, "CSV")
    from_api = csv_tables(data)
    assert from_cli.keys() == from_api.keys()
    for key in from_cli.keys() - {"audit_chain"}:  # the chain has grown by the API's event
        assert from_cli[key] == from_api[key], key
    owned = sum(c["owner_id"] == alpha.people["sales"].identity_id for c in alpha.customers)
    assert ["sales", "1", "1", str(owned), str(owned)] in from_cli["reads_by_role"]
    assert "dangan audit report (command)" in out.read_text(encoding="utf-8-sig")
    recorded = await run_in_tenant(
        alpha.ref,
        lambda: raw_connection().fetchrow(
            "SELECT actor_kind, actions, variables FROM audit_event"
            " WHERE operation_type = 'cli' ORDER BY seq DESC LIMIT 1"
        ),
    )
    assert recorded["actor_kind"] == "system" and recorded["actions"] == ["audit.report"]
    assert '"format": "CSV"' in recorded["variables"]
    assert '"command": "dangan audit report"' in recorded["variables"]


def test_a_bad_period_or_format_is_refused(env: dict[str, str], world: World) -> None:
    backwards = _run(env, "--tenant", "alpha", "--from", "2025-02-01", "--to", "2025-01-01")
    assert backwards.returncode == 2 and "to must be later than from" in backwards.stderr
    unknown = _run(
        env, "--tenant", "alpha", "--from", "2025-01-01", "--to", "2025-02-01", "--format", "pdf"
    )
    assert unknown.returncode == 2 and "json, csv or html" in unknown.stderr
    garbled = _run(env, "--tenant", "alpha", "--from", "last week", "--to", "2025-02-01")
    assert garbled.returncode == 2 and "--from" in garbled.stderr
