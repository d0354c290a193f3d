"""``dangan policy check | test | diff | propose | activate`` as an administrator runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dangan.devstack import Endpoints
from dangan.settings import Settings
from tests.support.api import Api
from tests.support.world import World
from tests.test_cli import cli_env

DANGAN = Path(sys.executable).parent / "dangan"
POLICIES = Path(__file__).resolve().parents[1] / "policies"
AUDITORS_SEE_CONTACT = (
    '\nfield_access(user: User, "full", _c: Customer, "contact") if user.has_role("auditor");\n'
)


@pytest.fixture(scope="module")
def run(
    settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory, world: World
):
    env = cli_env(settings, endpoints, tmp_path_factory.mktemp("clipolicy") / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = list(args) if args[0] in ("tenant", "user") else ["policy", *args]
        done = subprocess.run(
            [str(DANGAN), *command], env=env, capture_output=True, text=True, timeout=90
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def test_check_and_test_the_shipped_policies(run) -> None:
    checked = run("check", str(POLICIES))
    assert checked.returncode == 0 and "load cleanly" in checked.stdout
    tested = run("test", str(POLICIES))
    assert tested.returncode == 0, tested.stderr
    assert "check(s) passed" in tested.stdout


def test_check_names_file_and_line_of_a_syntax_error(run, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "sharing.polar").read_text().replace('has_role("admin");', 'has_role("admin")')
    (folder / "sharing.polar").write_text(text)
    done = run("check", str(folder))
    assert done.returncode == 1
    assert "sharing.polar" in done.stderr and "line" in done.stderr


def test_test_reports_each_failing_case(run, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "customers.polar").write_text(
        (folder / "customers.polar").read_text() + AUDITORS_SEE_CONTACT
    )
    done = run("test", str(folder))
    assert done.returncode == 1
    assert (
        "FAIL" in done.stderr
        and "auditor" in done.stderr
        and "phone should be masked, is full" in done.stderr
    )


def test_diff_propose_activate(run, tmp_path: Path, api: Api, world: World) -> None:
    folder = _copy(tmp_path)
    (folder / "customers.polar").write_text(
        (folder / "customers.polar").read_text() + AUDITORS_SEE_CONTACT
    )
    tests = (
        (folder / "tests" / "default.yaml")
        .read_text()
        .replace(
            "phone: masked, email: masked,\n           id_number: masked, annual_revenue: masked",
            "phone: full, email: full,\n           id_number: masked, annual_revenue: masked",
        )
    )
    (folder / "tests" / "default.yaml").write_text(tests)
    assert run("test", str(folder)).returncode == 0

    diff = run("diff", "--tenant", "gamma", str(folder))
    assert diff.returncode == 0, diff.stderr
    assert "auditor" in diff.stdout and "contact values full" in diff.stdout
    assert "changes who sees what" in diff.stdout

    refused = run(
        "propose", "--tenant", "gamma", "--email", "sales@gamma.test", "--comment", "x", str(folder)
    )
    assert refused.returncode != 0 and "role does not allow" in refused.stderr

    # A tenant of its own, so activating doesn't change the shared test world's policy.
    assert run("tenant", "create", "clipolicy", "--name", "CLI Policy").returncode == 0
    assert (
        run(
            "user",
            "create",
            "--tenant",
            "clipolicy",
            "--email",
            "boss@clipolicy.test",
            "--role",
            "admin",
        ).returncode
        == 0
    )
    proposed = run(
        "propose",
        "--tenant",
        "clipolicy",
        "--email",
        "boss@clipolicy.test",
        "--comment",
        "auditors see contact",
        str(folder),
    )
    assert proposed.returncode == 0, proposed.stderr
    version = proposed.stdout.split("proposed version ")[1].split(";")[0]
    activated = run("activate", "--tenant", "clipolicy", "--email", "boss@clipolicy.test", version)
    assert activated.returncode == 0 and f"version {version} is active" in activated.stdout
    again = run("activate", "--tenant", "clipolicy", "--email", "boss@clipolicy.test", version)
    assert again.returncode != 0 and "already active" in again.stderr
