"""``dangan dev --demo`` as ``make run`` runs it: the whole process tree, from outside.

One scenario on one data dir, in order: a first start seeds the demo and serves the
demo contract (DESIGN.md, Commands) and runs jobs; SIGTERM stops it and every server it
started; a second start reuses the data and stops on Ctrl-C; ``kill -9`` of a third
takes its servers down too (PR_SET_PDEATHSIG) and a fourth start recovers, saying so.

Only the embedded stack is exercised: DANGAN_* variables from the environment (CI may
point the rest of the suite at real servers) are not passed on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from tests.support.processes import wait_gone

REPO = Path(__file__).resolve().parents[2]
DANGAN = Path(sys.executable).parent / "dangan"
CUSTOMERS = 30
ROLES = {"admin", "manager", "sales", "sales2", "auditor"}
TENANTS = {"east", "north", "south"}
BUDGET_SECONDS = 150.0  # the whole module; it takes about 30 s on an idle machine
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


class Budget:
    """Every wait in this module is bounded by what is left of the module's budget."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        remaining = self.deadline - time.monotonic()
        assert remaining > 0, f"the module ran over its {BUDGET_SECONDS:.0f} s budget"
        return min(cap, remaining)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dev:
    """One ``dangan dev --demo`` process, its output in a file (a pipe could fill up)."""

    proc: subprocess.Popen[bytes]
    log: Path
    port: int
    data_dir: Path
    budget: Budget
    stack: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.budget.left(READY_TIMEOUT)
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dev exited {self.proc.returncode}:\n{self.output()}"
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    self.stack = json.loads((self.data_dir / "stack.json").read_text())
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"/readyz did not answer 200 in {READY_TIMEOUT:.0f} s:\n{self.output()}")

    def children(self) -> list[int]:
        """The servers it started, from ``stack.json`` (read while it runs)."""
        pids = [int(pid) for pid in self.stack["pids"].values()]
        assert len(pids) == 2, self.stack  # postgres and redis-server; S3 is a thread
        return pids

    def stop(self, sig: signal.Signals) -> tuple[int, float]:
        """Send ``sig`` to its process group, as a terminal's Ctrl-C would; wait."""
        began = time.monotonic()
        os.killpg(self.proc.pid, sig)
        try:
            code = self.proc.wait(self.budget.left(STOP_TIMEOUT))
        except subprocess.TimeoutExpired:
            pytest.fail(f"dev did not exit within {STOP_TIMEOUT:.0f} s of {sig.name}")
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def servers_on(data_dir: Path) -> list[str]:
    """postgres / redis-server processes whose working directory is under ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] in ("postgres", "redis-server") and (
                data_dir in Path(proc.cwd()).parents
            ):
                found.append(f"{proc.info['name']} (pid {proc.pid})")
        except (psutil.Error, OSError):
            pass
    return found


class Scenario:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.runs: list[Dev] = []
        self.done: set[str] = set()
        self.budget = Budget(BUDGET_SECONDS)

    def start(self) -> Dev:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
        env.update(
            DANGAN_DATA_DIR=str(self.data_dir),
            DANGAN_PORT=str(port),
            DANGAN_DEMO_CUSTOMERS_PER_TENANT=str(CUSTOMERS),
            PYTHONUNBUFFERED="1",
        )
        log = self.root / f"dev-{len(self.runs) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(DANGAN), "dev", "--demo"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a terminal job
            )
        dev = Dev(proc, log, port, self.data_dir, self.budget)
        self.runs.append(dev)
        dev.wait_ready()
        return dev

    def needs(self, step: str) -> None:
        if step not in self.done:
            pytest.skip(f"needs the earlier step {step!r} of this scenario")


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    root = Path(tempfile.mkdtemp(prefix="dangan-e2e-", dir="/tmp"))
    root.chmod(0o755)  # the embedded PostgreSQL runs as an unprivileged user
    scene = Scenario(root)
    try:
        yield scene
    finally:
        for dev in scene.runs:
            dev.kill()
        deadline = time.monotonic() + 10  # servers of a killed run may still be exiting
        while (leftovers := servers_on(scene.data_dir)) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers, f"servers left running: {leftovers}"


def post(url: str, credential: str | None, query: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    reply = httpx.post(url, json={"query": query}, headers=headers, timeout=30)
    return reply.status_code, reply.json()


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def check_demo_contract(dev: Dev) -> dict[str, Any]:
    """What ../shared/tools/check-demo-contract checks, with this module's demo size."""
    path = dev.data_dir / "demo-credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600  # tokens and keys: owner only
    creds = json.loads(path.read_text())
    assert set(creds) == {"tenants"} and set(creds["tenants"]) >= TENANTS
    for slug in TENANTS:
        tenant = creds["tenants"][slug]
        url = tenant["graphql_url"]
        assert url == f"{dev.base}/t/{slug}/graphql"
        assert set(tenant["users"]) >= ROLES
        for role, user in tenant["users"].items():
            assert user["email"] and user["token"], (slug, role)
            status, body = post(url, user["token"], "{ me { email tenant { slug } } }")
            assert status == 200 and not body.get("errors"), (slug, role, body)
            assert body["data"]["me"] == {"email": user["email"], "tenant": {"slug": slug}}
        assert tenant["apps"] and all(
            app["key"].startswith("dgk_") for app in tenant["apps"].values()
        )
        for app in tenant["apps"].values():
            status, body = post(url, app["key"], "{ me { kind } }")
            assert status == 200 and body["data"]["me"]["kind"] == "PARTNER_APP", body
            # The demo shares the salesperson's customers (a third of them) with the
            # app, masked: it sees those and nothing else.
            query = "{ customers(first: 100) { totalCount nodes { phone idNumber } } }"
            status, body = post(url, app["key"], query)
            seen = body["data"]["customers"]
            assert seen["totalCount"] == CUSTOMERS // 3, body
            assert all("*" in n["phone"] and n["idNumber"] is None for n in seen["nodes"])
        status, body = post(url, None, "{ me { __typename } }")
        assert status == 401 and "UNAUTHENTICATED" in codes(body), body
        admin = tenant["users"]["admin"]["token"]
        status, body = post(url, admin, "{ customers(first: 1) { totalCount } }")
        assert status == 200 and body["data"]["customers"]["totalCount"] == CUSTOMERS, body
        other = next(s for s in sorted(TENANTS) if s != slug)
        status, body = post(creds["tenants"][other]["graphql_url"], admin, "{ me { email } }")
        assert status == 403 and "FORBIDDEN" in codes(body), body
    for path_ in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(dev.base + path_, timeout=10).status_code == 200, path_
    return creds


async def census_through_the_dev_worker(dev: Dev, slug: str) -> dict[str, Any]:
    """The worker that ``make run`` starts takes a job from Redis and answers it."""
    pool = await create_pool(RedisSettings.from_dsn(dev.stack["endpoints"]["redis_url"]))
    try:
        job = await pool.enqueue_job(
            "tenant_census", slug, _queue_name="dangan:queue", _job_id=f"e2e:{uuid.uuid4()}"
        )
        assert job is not None
        result: dict[str, Any] = await job.result(timeout=dev.budget.left(30), poll_delay=0.1)
        return result
    finally:
        await pool.aclose()


async def test_first_start_serves_the_demo_contract(scenario: Scenario) -> None:
    dev = scenario.start()
    assert dev.stack["owner_pid"] == dev.proc.pid
    for pid in dev.children():
        assert psutil.Process(pid).ppid() == dev.proc.pid
    check_demo_contract(dev)
    output = dev.output()
    for slug in TENANTS:
        assert f"{slug}: {CUSTOMERS} customers added" in output
    assert f"Dangan is up. GraphiQL: {dev.base}/t/east/graphql" in output
    census = await census_through_the_dev_worker(dev, "east")
    assert census["tenant"] == "east" and census["customers"] == CUSTOMERS
    scenario.done.add("first start")


def test_sigterm_stops_the_whole_tree(scenario: Scenario) -> None:
    scenario.needs("first start")
    dev = scenario.runs[-1]
    children = dev.children()  # read before stopping: stack.json goes with the stack
    code, took = dev.stop(signal.SIGTERM)
    assert took < STOP_TIMEOUT
    assert wait_gone(children, timeout=5) == [], "orphaned servers after SIGTERM"
    assert servers_on(dev.data_dir) == []
    assert not (dev.data_dir / "stack.json").exists(), "a clean stop removes its state file"
    output = dev.output()
    assert "Traceback" not in output, output
    assert code == 0, (code, output[-2000:])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{dev.base}/healthz", timeout=2)
    scenario.done.add("sigterm")


async def test_restart_reuses_the_data_and_stops_on_ctrl_c(scenario: Scenario) -> None:
    scenario.needs("sigterm")
    dev = scenario.start()
    output = dev.output()
    assert "recovered stale stack state" not in output  # the last stop was clean
    for slug in TENANTS:  # the demo is idempotent: nothing added, nothing lost
        assert f"{slug}: 0 customers added" in output, output
    creds = check_demo_contract(dev)  # fresh tokens, still 30 customers per tenant
    assert creds["tenants"]["east"]["graphql_url"].startswith(dev.base)
    assert (await census_through_the_dev_worker(dev, "south"))["customers"] == CUSTOMERS
    children = dev.children()
    code, took = dev.stop(signal.SIGINT)
    assert took < STOP_TIMEOUT
    assert wait_gone(children, timeout=5) == [], "orphaned servers after Ctrl-C"
    assert not (dev.data_dir / "stack.json").exists()
    output = dev.output()
    assert "Traceback" not in output, output
    assert code == 0, (code, output[-2000:])
    scenario.done.add("ctrl-c")


def test_kill_9_takes_the_servers_down_and_the_next_start_recovers(scenario: Scenario) -> None:
    scenario.needs("ctrl-c")
    dev = scenario.start()
    children = dev.children()
    dev.proc.send_signal(signal.SIGKILL)
    dev.proc.wait(10)
    assert wait_gone(children, timeout=dev.budget.left(15)) == [], "PR_SET_PDEATHSIG did not fire"
    assert (dev.data_dir / "stack.json").exists()  # nobody could clean up after kill -9

    again = scenario.start()
    output = again.output()
    assert f"recovered stale stack state from pid {dev.proc.pid} (not running)" in output, output
    status, body = post(
        f"{again.base}/t/north/graphql",
        json.loads((again.data_dir / "demo-credentials.json").read_text())["tenants"]["north"][
            "users"
        ]["admin"]["token"],
        "{ customers(first: 1) { totalCount } }",
    )
    assert status == 200 and body["data"]["customers"]["totalCount"] == CUSTOMERS
    children = again.children()
    code, _ = again.stop(signal.SIGTERM)
    assert wait_gone(children, timeout=5) == []
    assert code == 0, again.output()[-2000:]
