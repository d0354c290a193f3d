"""Backup throughput: a tenant of 20,000 customers backed up, against a raw ``COPY``.

Setup: a tenant of its own (``bench_backup``) filled by :func:`bench.backup_data.fill_tenant`
(20,000 customers and about 18 records each, COPY and ``generate_series``).

Backup side: :func:`dangan.backups.writer.run_backup` of that tenant into the backup
bucket of the embedded S3 (moto, in this process, as the stack runs it), every round a
new manual backup id (``m20990101T0000``, ``…T0001``, …): the whole job — catalogue,
snapshot read by COPY, zstd, AES-GCM, multipart upload, object lock, manifest, catalogue
row and audit event. Checked after each: a backup was made, of every row.

Floor: :func:`bench.backup_data.raw_copy` — ``COPY <table> TO STDOUT`` of every table of
the schema in one REPEATABLE READ, READ ONLY transaction on a plain asyncpg connection,
into a sink that drops the bytes.

Both print MB/s of the COPY text (the same bytes on both sides: the backup's manifest
counts them, and must agree with the floor), and the backup's share of the floor's
throughput; the target is at least 50 %. Rounds default to at most 5 after 1 warm-up.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.backup_data import fill_tenant, raw_copy
from bench.harness import Harness, Side, compare, log, report
from dangan.audit.actions import ActionLog
from dangan.backups.slots import check_backup_id
from dangan.backups.store import open_backup_store
from dangan.backups.writer import BackupOutcome, run_backup
from dangan.storage import s3_client
from dangan.tenants.provisioning import create_tenant

TENANT = "bench_backup"
CUSTOMERS = 20_000
ROUNDS = 5
WARMUP = 1
TARGET = 0.5


class BenchmarkFailed(AssertionError):
    pass


def manual_id(number: int) -> str:
    """The ``number``-th distinct manual backup id of a far-away day (one per minute)."""
    hours, minutes = divmod(number, 60)
    return check_backup_id(f"m20990101T{hours:02d}{minutes:02d}")


async def run(h: Harness) -> None:
    tenant = await create_tenant(TENANT, "Backup Throughput Ltd")
    async with h.raw_connection() as conn:
        filled = await fill_tenant(conn, tenant, CUSTOMERS)
        store = await open_backup_store(s3_client(h.endpoints), h.settings)
        source = h.app.state.objects
        action_log = ActionLog(h.settings.secret_key, "job")
        numbers = itertools.count()
        stored: list[int] = []

        async def backup() -> BackupOutcome:
            backup_id = manual_id(next(numbers))
            return await run_backup(
                h.settings, store, source, tenant, backup_id, "manual", action_log
            )

        def check_backup(outcome: Any) -> None:
            record = outcome.record
            if not outcome.made:
                raise BenchmarkFailed(f"backup {record.id} was not made anew")
            # Each backup adds its backup.run audit event after its snapshot: the n-th
            # holds n - 1 more rows than the filled tenant.
            if record.rows < filled.rows or record.plain_bytes < filled.copy_bytes:
                raise BenchmarkFailed(
                    f"backup {record.id} holds {record.rows} rows, {record.plain_bytes} bytes"
                )
            stored.append(record.stored_bytes)

        async def raw() -> int:
            return await raw_copy(conn, tenant)

        def check_raw(copied: Any) -> None:
            if copied < filled.copy_bytes:
                raise BenchmarkFailed(f"raw COPY gave {copied} bytes, not {filled.copy_bytes}")

        backup_ms, raw_ms = await compare(
            Side("backup", backup, check_backup),
            Side("raw COPY", raw, check_raw),
            warmup=min(h.warmup, WARMUP),
            rounds=min(h.rounds, ROUNDS),
        )
    megabytes = filled.copy_bytes / 1e6
    backup_rate, raw_rate = megabytes / backup_ms * 1000, megabytes / raw_ms * 1000
    share = backup_rate / raw_rate
    log(f"{TENANT}: {next(numbers)} backups made, {stored[-1] / 1e6:.1f} MB stored each")
    print(
        f"backup_throughput ({CUSTOMERS:,} customers, {filled.rows:,} rows, {megabytes:.1f} MB):"
        f" backup {backup_rate:.1f} MB/s vs raw COPY {raw_rate:.1f} MB/s"
        f" = {share:.0%} (target >= {TARGET:.0%})",
        flush=True,
    )
    report("backup_throughput", backup_ms, raw_ms)
