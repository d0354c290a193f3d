"""Child processes: free ports, servers that die with us (``PR_SET_PDEATHSIG``), stopping
them, and killing leftovers of a dead run."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil

from dangan.devstack.errors import DevStackError

log = logging.getLogger("dangan.devstack")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
if _LIBC is not None:
    _LIBC.prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    _LIBC.prctl.restype = ctypes.c_int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def pid_alive(pid: Any) -> bool:
    """Whether ``pid`` (as found in a state file: maybe not even a number) is running."""
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, TypeError, ValueError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(argv: list[str], user: tuple[int, int] | None = None, stdin: str | None = None) -> str:
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


def kill_leftovers(dirs: list[Path]) -> list[str]:
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


class Children:
    """The servers one stack started, in start order, each with the signal that stops it;
    their logs go to ``<log_dir>/<name>.log``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen[bytes], signal.Signals]] = []

    def pids(self) -> dict[str, int]:
        """The pid of each running server, by name."""
        return {name: proc.pid for name, proc, _ in self._procs}

    def launch(
        self,
        name: str,
        argv: Callable[[int], list[str]],
        ready: Callable[[int, int], bool],
        cwd: Path,
        user: tuple[int, int] | None,
        sig: signal.Signals,
    ) -> int:
        """Start a server on a free port (retrying if someone grabbed it); wait until ready."""
        logfile = self.log_dir / f"{name}.log"
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

    def signal_all(self) -> None:
        """Send every server its stop signal, without waiting."""
        for _, proc, sig in self._procs:
            with suppress(OSError):
                proc.send_signal(sig)

    def reap(self) -> None:
        """Wait for each server to exit, last started first; SIGKILL any that takes too long."""
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
