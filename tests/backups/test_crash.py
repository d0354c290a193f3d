"""Crash safety of backup jobs, with real processes: a worker process
(``tests.support.backup_worker``: the product's backup and alarm workers) killed with
``kill -9`` mid-backup, its database session terminated mid-backup, S3 gone mid-backup.

Each backup is stopped mid-way deterministically: the test locks the table the backup
reads last, so the worker waits in that table's COPY with every other table read (see
``last_table_held``). Whatever happens, nothing half-written is listed as a backup:
every backup the catalogue lists has its manifest.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.jobs import Job, JobResult

from dangan.alarms.webhook import verify_signature
from dangan.backups.catalogue import find_backup, find_run, list_backups
from dangan.backups.manifest import manifest_key
from dangan.backups.reader import verify_backup
from dangan.backups.status import run_status
from dangan.backups.store import BackupStore
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.backups import enqueue_backup
from tests.alarms.conftest import Receiver
from tests.backups.conftest import fill
from tests.backups.holding import last_table_held
from tests.test_cli import cli_env

REPO = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is cleaned up."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Crash:
    """This test's namespace on the run's stack, and worker processes for it."""

    settings: Settings  # as the test reads status (the workers' namespace)
    env: dict[str, str]
    queue: ArqRedis
    logs: Path
    started: list[WorkerProcess] = field(default_factory=list)

    @contextmanager
    def worker(self, **env: str) -> Iterator[WorkerProcess]:
        log = self.logs / f"worker-{len(self.started) + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.backup_worker"],
                env={**self.env, **env},
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running = WorkerProcess(process, log)
        self.started.append(running)
        try:
            yield running
        finally:
            _stop(process)

    def job(self, ident: str) -> Job:
        return Job(ident, self.queue, _queue_name=self.settings.backup_queue_name)

    async def finished(self, ident: str, timeout: float = 90) -> JobResult:
        deadline = time.monotonic() + timeout
        while (info := await self.job(ident).result_info()) is None:
            assert time.monotonic() < deadline, self.outputs()
            await asyncio.sleep(0.1)
        return info

    def outputs(self) -> str:
        return "\n".join(w.output() for w in self.started)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
async def crash(settings: Settings, endpoints: Endpoints, tmp_path: Path) -> AsyncIterator[Crash]:
    namespace = f"{settings.redis_namespace}-crash{uuid.uuid4().hex[:6]}"
    env = cli_env(settings, endpoints, tmp_path / "data")
    env.update(
        DANGAN_REDIS_NAMESPACE=namespace,
        DANGAN_BACKUP_RETRY_SECONDS="0.2",
        PYTHONPATH=str(REPO),
    )
    pool = await create_pool(RedisSettings.from_dsn(endpoints.redis_url))
    view = settings.model_copy(update={"redis_namespace": namespace})
    yield Crash(view, env, pool, tmp_path)
    stale = [k async for k in pool.scan_iter(match=f"*{namespace}*")]
    if stale:
        await pool.delete(*stale)
    await pool.aclose()


async def _only_whole_backups_listed(backups: BackupStore, tenant: TenantRef) -> list[str]:
    """The tenant's listed backups, each checked to have its manifest."""
    listed = await list_backups(tenant.id)
    for record in listed:
        assert await backups.objects.stat(manifest_key(tenant.slug, record.id)) is not None
    return [record.id for record in listed]


async def test_a_worker_killed_mid_backup_leaves_nothing_listed_and_the_slot_runs_again(
    crash: Crash,
    tenant: TenantRef,
    objects: ObjectStore,
    backups: BackupStore,
    endpoints: Endpoints,
) -> None:
    await fill(tenant, objects, customers=6, files=2)
    async with last_table_held(endpoints, tenant) as held:
        with crash.worker() as first:
            asked = await enqueue_backup(
                crash.queue, crash.settings, tenant, "scheduled", datetime.now(UTC)
            )
            orphan = await held.waiting_copy()
            midway = await find_run(tenant.id, asked.backup_id)
            assert midway is not None and midway.status == "running"
            assert midway.tables is not None and 0 < midway.tables_done < midway.tables
            first.kill()
        assert first.process.returncode == -signal.SIGKILL
        await held.release()
        await held.gone(orphan)  # its backend notices the client is gone

    # Nothing of it is a backup: no manifest, no catalogue row.
    assert await backups.objects.stat(manifest_key(tenant.slug, asked.backup_id)) is None
    assert await find_backup(tenant.id, asked.backup_id) is None
    assert await _only_whole_backups_listed(backups, tenant) == []
    # Its run still says running (nobody was left to say otherwise) …
    stale = await find_run(tenant.id, asked.backup_id)
    assert stale is not None and (stale.status, stale.tables_done) == (
        "running",
        midway.tables_done,
    )
    now = await run_status(crash.queue, crash.settings, tenant, asked.backup_id)
    assert now is not None and now.state == "running"
    # … until no try could still be alive: then readers show it interrupted.
    later = datetime.now(UTC) + timedelta(seconds=crash.settings.backup_timeout_seconds + 1)
    shown = await run_status(crash.queue, crash.settings, tenant, asked.backup_id, now=later)
    assert shown is not None and shown.state == "interrupted"

    # arq runs the job again once its in-progress mark lapses (the job's timeout and a
    # minute); the test lets it lapse at once rather than wait.
    await crash.queue.delete(in_progress_key_prefix + asked.job_id)
    with crash.worker():
        result = await crash.finished(asked.job_id)

    assert result.success, crash.outputs()
    assert result.job_try == 2 and result.result["made"]
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.attempts) == ("complete", 2)
    assert await _only_whole_backups_listed(backups, tenant) == [asked.backup_id]
    report = await verify_backup(crash.settings, backups, tenant.slug, asked.backup_id)
    assert report.ok and report.attachments == 2, report.problems


async def test_the_database_session_cut_mid_backup_is_retried_and_the_backup_made(
    crash: Crash,
    tenant: TenantRef,
    objects: ObjectStore,
    backups: BackupStore,
    endpoints: Endpoints,
) -> None:
    await fill(tenant, objects, customers=4, files=1)
    async with last_table_held(endpoints, tenant) as held:
        with crash.worker() as worker:
            asked = await enqueue_backup(
                crash.queue, crash.settings, tenant, "manual", datetime.now(UTC)
            )
            pid = await held.waiting_copy()
            # What a restart of PostgreSQL does to the backup's session.
            await held.terminate(pid)
            await held.release()
            result = await crash.finished(asked.job_id)

    assert result.success, worker.output()
    assert result.job_try == 2 and result.result["made"]
    assert "backup failed, trying again" in worker.output()
    assert "the database broke off" in worker.output()
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.attempts, run.error) == ("complete", 2, None)
    assert await _only_whole_backups_listed(backups, tenant) == [asked.backup_id]
    assert (await verify_backup(crash.settings, backups, tenant.slug, asked.backup_id)).ok


class Gate:
    """A TCP passage to the run's S3 that the test shuts: every connection through it is
    cut and new ones are refused, as with an S3 that went away. (moto's own server,
    stopped, keeps serving its open keep-alive connections and leaves its socket
    listening: to a client it never looks down.)"""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.target = (host, int(port))
        self.open: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._pass, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def shut(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.open):
            writer.transport.abort()

    async def _pass(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.open |= {writer, up_writer}
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self.open.discard(end)
                end.transport.abort()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.transport.abort()


@pytest.fixture
def operators() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


async def test_s3_gone_mid_backup_is_retried_then_failed_alerted_and_nothing_listed(
    crash: Crash,
    tenant: TenantRef,
    objects: ObjectStore,
    backups: BackupStore,
    endpoints: Endpoints,
    operators: Receiver,
) -> None:
    await fill(tenant, objects, customers=3, files=1)
    gate = Gate(endpoints.s3_endpoint)
    s3 = await gate.start()
    secret = "operators-" + uuid.uuid4().hex
    async with last_table_held(endpoints, tenant) as held:
        with crash.worker(
            DANGAN_S3_ENDPOINT=s3,
            DANGAN_BACKUP_MAX_TRIES="2",
            DANGAN_ALARM_WEBHOOK_URL=operators.url,
            DANGAN_ALARM_WEBHOOK_SECRET=secret,
        ) as worker:
            asked = await enqueue_backup(
                crash.queue, crash.settings, tenant, "scheduled", datetime.now(UTC)
            )
            await held.waiting_copy()
            await gate.shut()
            await held.release()
            result = await crash.finished(asked.job_id)
            deadline = time.monotonic() + 30
            while not operators.received and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

    reason = "object storage unreachable (MaxRetryError)"
    summary = f"the scheduled backup {asked.backup_id} failed after 2 tries: {reason}"
    assert not result.success and result.job_try == 2, worker.output()
    assert str(result.result) == summary
    output = worker.output()
    assert "backup failed, trying again" in output and '"event": "backup failed"' in output
    # Failed, with why, and nothing listed.
    run = await find_run(tenant.id, asked.backup_id)
    assert run is not None and (run.status, run.error) == ("failed", reason)
    shown = await run_status(crash.queue, crash.settings, tenant, asked.backup_id)
    assert shown is not None and (shown.state, shown.error) == ("failed", reason)
    assert await backups.objects.stat(manifest_key(tenant.slug, asked.backup_id)) is None
    assert await _only_whole_backups_listed(backups, tenant) == []

    async def alerts() -> list[Any]:
        return list(
            await raw_connection().fetch(
                "SELECT id, actor_kind, summary FROM alert WHERE rule = 'backup_failed'"
            )
        )

    [alert] = await run_in_tenant(tenant, alerts)
    assert (alert["actor_kind"], alert["summary"]) == ("system", summary)
    # The operators were told, signed with their secret.
    [told] = operators.received
    stamp = told.headers["X-Dangan-Timestamp"]
    assert verify_signature(secret, stamp, told.body, told.headers["X-Dangan-Signature"])
    body = orjson.loads(told.body)
    assert (body["tenant"], body["alert"]["rule"], body["alert"]["summary"]) == (
        tenant.slug,
        "backup_failed",
        summary,
    )
