"""The stack's record under its data dir: ``stack.lock`` (held while up), ``stack.json``."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from dangan.devstack.endpoints import Endpoints, endpoints_for
from dangan.devstack.errors import DevStackError
from dangan.devstack.processes import pid_alive, port_open
from dangan.settings import Settings

log = logging.getLogger("dangan.devstack")


def _state_path(data_dir: Path) -> Path:
    return data_dir / "stack.json"


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The recorded state under ``data_dir``, or None if missing or unreadable."""
    try:
        state = json.loads(_state_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def acquire_lock(data_dir: Path) -> IO[str]:
    """Lock ``data_dir`` for this process, or raise DevStackError naming the owner."""
    lock_file = open(data_dir / "stack.lock", "a+")  # noqa: SIM115 -- held while up
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        pid = (read_state(data_dir) or {}).get("owner_pid", "unknown")
        raise DevStackError(
            f"an embedded stack already runs under {data_dir} (pid {pid}); "
            "stop it or use another DANGAN_DATA_DIR"
        ) from None
    return lock_file


def release_lock(data_dir: Path, lock_file: IO[str]) -> None:
    """Remove the state file, then unlock and close ``lock_file``."""
    _state_path(data_dir).unlink(missing_ok=True)
    with suppress(OSError):
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    lock_file.close()


def recover_stale_state(data_dir: Path) -> None:
    """With the lock held, drop the state file a previous owner left behind (logging it)."""
    state = read_state(data_dir)
    if state is not None or _state_path(data_dir).exists():
        pid = (state or {}).get("owner_pid", "unknown")
        why = "no longer holds the lock" if pid_alive(pid) else "not running"
        log.warning("recovered stale stack state from pid %s (%s)", pid, why)
        _state_path(data_dir).unlink(missing_ok=True)


def write_state(
    data_dir: Path, endpoints: Endpoints, ports: dict[str, int | None], pids: dict[str, int]
) -> None:
    """Record this process as the owner of the stack under ``data_dir`` (atomically)."""
    state = {
        "owner_pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "ports": ports,
        "pids": pids,
        "endpoints": {k: v for k, v in asdict(endpoints).items() if k != "s3_secret_key"},
    }
    path = _state_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def running_stack(settings: Settings) -> Endpoints | None:
    """Endpoints of a live stack recorded under the data dir, if it has every part we need."""
    state = read_state(settings.data_dir.expanduser().resolve())
    if state is None or not pid_alive(state.get("owner_pid")):
        return None
    ports = state.get("ports") or {}
    external = {
        "postgres": settings.database_url,
        "redis": settings.redis_url,
        "s3": settings.s3_endpoint,
    }
    for part, url in external.items():
        if not url and not (isinstance(ports.get(part), int) and port_open(ports[part])):
            return None
    return endpoints_for(settings, ports.get("postgres"), ports.get("redis"), ports.get("s3"))
