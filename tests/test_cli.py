"""The real ``dangan`` command, run as a subprocess against this run's stack.

The DANGAN_* URLs point it at the test stack, so it starts nothing of its own; its data
dir is an empty temporary one. Each launch costs about a second of imports, so each
test runs only the commands it is about.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from arq import create_pool
from arq.connections import RedisSettings

from dangan.devstack import Endpoints
from dangan.settings import Settings
from tests.support.api import Api
from tests.support.world import World

DANGAN = Path(sys.executable).parent / "dangan"
ME = "{ me { kind email roles scopes departmentId tenant { slug } } }"

Run = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(settings: Settings, endpoints: Endpoints, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    env.update(
        DANGAN_DATABASE_URL=endpoints.database_url,
        DANGAN_REDIS_URL=endpoints.redis_url,
        DANGAN_S3_ENDPOINT=endpoints.s3_endpoint,
        DANGAN_S3_BUCKET=settings.s3_bucket,
        DANGAN_SECRET_KEY=settings.secret_key,
        DANGAN_REDIS_NAMESPACE=settings.redis_namespace,
        DANGAN_DATA_DIR=str(data_dir),
        DANGAN_ENV="test",
        COLUMNS="200",  # rich wraps tables at 80 columns when it can't see a terminal
    )
    return env


@pytest.fixture(scope="module")
def env(
    settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return cli_env(settings, endpoints, tmp_path_factory.mktemp("cli") / "data")


@pytest.fixture(scope="module")
def dangan(env: dict[str, str]) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(DANGAN), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    return run


@pytest.fixture(scope="module")
def clitest(dangan: Run, world: World) -> Iterator[subprocess.CompletedProcess[str]]:
    """Tenant ``clitest`` made by the command; the world (and its pool) exist first."""
    yield dangan("tenant", "create", "clitest", "--name", "CLI Test")


def test_tenant_create_then_list(
    clitest: subprocess.CompletedProcess[str], dangan: Run, env: dict[str, str]
) -> None:
    assert clitest.returncode == 0, clitest.stderr
    assert "created tenant clitest (schema t_clitest, version" in clitest.stdout
    listed = dangan("tenant", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if "│" in line}
    assert {"alpha", "beta", "gamma", "clitest"} <= set(rows)
    assert "CLI Test" in rows["clitest"] and "t_clitest" in rows["clitest"]
    assert "active" in rows["clitest"]
    assert not (Path(env["DANGAN_DATA_DIR"]) / "stack.json").exists()  # started nothing


def test_bad_slug_is_exit_2_with_a_clear_message(dangan: Run) -> None:
    done = dangan("tenant", "create", "Bad-Slug", "--name", "Nope")
    assert done.returncode == 2
    assert done.stderr.startswith("error: slug must be"), done.stderr
    assert done.stdout == ""


def test_duplicate_tenant_is_refused(
    clitest: subprocess.CompletedProcess[str], dangan: Run
) -> None:
    done = dangan("tenant", "create", "clitest", "--name", "Again")
    assert done.returncode == 2
    assert "tenant 'clitest' already exists" in done.stderr


def test_migrate_all_on_an_up_to_date_cluster(
    clitest: subprocess.CompletedProcess[str], dangan: Run
) -> None:
    done = dangan("tenant", "migrate", "--all")
    assert done.returncode == 0, done.stderr
    assert "done: 0 migration(s) applied" in done.stdout
    # The progress bar's last frame: every tenant done, N/N (the world's three and clitest).
    frame = re.search(r"migrating [a-z0-9_]+ .* (\d+)/(\d+)\n", done.stdout)
    assert frame is not None, done.stdout
    assert frame[1] == frame[2] and int(frame[1]) >= 4


async def test_user_then_token_works_against_the_api(
    clitest: subprocess.CompletedProcess[str], dangan: Run, api: Api
) -> None:
    made = dangan(
        "user",
        "create",
        "--tenant",
        "clitest",
        "--email",
        "a@cli.test",
        "--role",
        "sales",
        "--department",
        "销售部/一组",
    )
    assert made.returncode == 0, made.stderr
    assert "user a@cli.test" in made.stdout and "in clitest as sales" in made.stdout
    issued = dangan("token", "create", "--tenant", "clitest", "--email", "a@cli.test")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and token.count(".") == 2  # the token alone: a JWT
    me = (await api.post("clitest", token, ME)).ok()["me"]
    assert me["kind"] == "USER" and me["email"] == "a@cli.test" and me["roles"] == ["sales"]
    assert me["departmentId"] is not None and me["tenant"]["slug"] == "clitest"
    # Bound to its tenant: refused elsewhere, never answered empty.
    assert (await api.post("alpha", token, ME)).status == 403


def test_token_for_a_non_member_is_refused(
    clitest: subprocess.CompletedProcess[str], dangan: Run, world: World
) -> None:
    # admin@alpha.test is a real person, but not a member of clitest.
    done = dangan("token", "create", "--tenant", "clitest", "--email", "admin@alpha.test")
    assert done.returncode != 0
    assert "admin@alpha.test is not an active member of clitest" in done.stderr
    assert done.stdout == ""
    unknown = dangan("token", "create", "--tenant", "nosuch", "--email", "a@cli.test")
    assert unknown.returncode != 0 and "no tenant named 'nosuch'" in unknown.stderr


async def test_app_key_shown_once_works_until_revoked(
    clitest: subprocess.CompletedProcess[str], dangan: Run, api: Api
) -> None:
    created = dangan(
        "app", "create", "--tenant", "clitest", "--name", "p1", "--scopes", "customers:read"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("dgk_")  # stdout: the key alone
    assert "store this key now" in created.stderr and key not in created.stderr
    me = (await api.post("clitest", key, ME)).ok()["me"]
    assert me["kind"] == "PARTNER_APP" and me["scopes"] == ["customers:read"]

    revoked = dangan("app", "revoke", "--tenant", "clitest", "--name", "p1")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked p1" in revoked.stdout
    reply = await api.post("clitest", key, ME)
    assert reply.status == 401 and reply.codes == ["UNAUTHENTICATED"]


async def test_worker_command_runs_jobs_and_stops_on_sigterm(
    clitest: subprocess.CompletedProcess[str], env: dict[str, str], settings: Settings
) -> None:
    namespace = f"{settings.redis_namespace}-cli-worker"
    worker = subprocess.Popen(
        [str(DANGAN), "worker"],
        env={**env, "DANGAN_REDIS_NAMESPACE": namespace},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    queue = f"{namespace}:queue"
    pool = await create_pool(RedisSettings.from_dsn(env["DANGAN_REDIS_URL"]))
    try:
        job = await pool.enqueue_job(
            "tenant_census", "clitest", _queue_name=queue, _job_id=f"{namespace}:{uuid.uuid4()}"
        )
        assert job is not None
        result = await job.result(timeout=30, poll_delay=0.1)
        assert result == {"tenant": "clitest", "customers": 0, "by_kind_and_tier": {}}
    finally:
        stale = [key async for key in pool.scan_iter(match=f"arq:*{namespace}*")]
        if stale:
            await pool.delete(*stale)
        await pool.aclose()
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = await asyncio.to_thread(worker.communicate, timeout=15)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert time.monotonic() - began < 10
    assert worker.returncode == 0, output
    assert "Traceback" not in output, output
    assert "tenant_census" in output  # arq's log of the run
