"""Restore, whole: a backup from S3 unpacked and checked (:mod:`dangan.backups.spool`),
loaded into a fresh schema and verified (:mod:`dangan.backups.loading`), then swapped in
over the tenant, or into a new tenant (``--as``), or only loaded and dropped again (the
restore drill). The attachment files the bucket has lost are put back.

Destroyed stays destroyed: in the swap's transaction (or the new tenant's), what the
destruction records written since the backup say was destroyed is deleted again
(:mod:`dangan.services.retention.redestruction`, given the secret key its hashes are
keyed with), and its attachment files are neither put back nor left in the bucket.

Each outcome is recorded: ``backup.restore`` in the restored tenant's audit trail (in the
swap's transaction, with what was destroyed again by record type), ``backup.drill`` in
the tenant's trail with the catalogue's ``drilled_at`` / ``drill_error``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dangan.audit.actions import ActionLog
from dangan.backups import loading
from dangan.backups.catalogue import note_check
from dangan.backups.errors import BackupError
from dangan.backups.manifest import Manifest
from dangan.backups.reader import OpenBackup, open_backup
from dangan.backups.snapshot import Snapshot, TableCopy
from dangan.backups.spool import Spool, put_back_files, spooled
from dangan.backups.store import BackupStore
from dangan.backups.transient import describe
from dangan.services.errors import DanganError
from dangan.services.retention.objects import remove_queued_objects, unwanted_objects
from dangan.services.retention.redestruction import (
    Destroyed,
    Redestruction,
    destroy_again,
    destruction_subjects,
)
from dangan.services.retention.run import retention_ready
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.restoring import Record, RetiredSchema
from dangan.tenants.scope import TenantRef, run_in_tenant

Step = Callable[[str, int, int], Awaitable[None]]  # stage, done, total


@dataclass(frozen=True)
class RestoreReport:
    tenant: str  # the tenant restored into
    backup: str
    from_version: int
    to_version: int
    tables: int
    rows: int
    files_written: int
    files_present: int
    retired: RetiredSchema | None  # None: restored into a new tenant, or a drill
    # Destroyed since the backup and deleted again, by record type; their files kept out.
    destroyed_again: Mapping[str, int] = field(default_factory=dict)
    files_kept_out: int = 0


@dataclass
class DestroyAgain:
    """A restore's ``reapply``: delete again what destruction records say was destroyed
    (``records``, or the restored schema's own — those carried over included), and
    remember what it did."""

    secret_key: str
    records: Sequence[Destroyed] | None = None
    queue_files: bool = True
    done: Redestruction = field(default_factory=Redestruction)

    async def __call__(self) -> Mapping[str, Any]:
        records = self.records if self.records is not None else await destruction_subjects()
        self.done = await destroy_again(self.secret_key, records, queue_files=self.queue_files)
        return self.done.details()


async def _kept_out(tenant: TenantRef, spool: Spool) -> set[str]:
    """The backup's files the restored tenant must not get back (see unwanted_objects)."""
    keys = sorted(spool.files)
    if not keys:
        return set()
    return await run_in_tenant(tenant, lambda: unwanted_objects(keys))


def manifest_snapshot(manifest: Manifest) -> Snapshot:
    """What the loader checks against: the manifest's version, tables and sequences."""
    return Snapshot(
        manifest.schema_version,
        [TableCopy(t.name, t.rows, t.bytes, t.sha256) for t in manifest.tables],
        {name: (int(value), bool(called)) for name, (value, called) in manifest.sequences.items()},
    )


async def _opened(
    settings: Settings, store: BackupStore, source: TenantRef, backup: str
) -> OpenBackup:
    opened = await open_backup(settings, store, source.slug, backup)
    if opened.manifest.tenant_id != source.id:
        raise BackupError(
            f"backup {backup} under {source.slug} was taken of tenant id"
            f" {opened.manifest.tenant_id}, not of this {source.slug} (id {source.id}):"
            " restore it with --as NEW_SLUG"
        )
    return opened


async def _unpacking(step: Step | None, tables: int) -> None:
    if step is not None:
        await step("downloading, decrypting and checking", 0, tables)


def _counter(step: Step | None, stage: str, total: int) -> loading.OnTable | None:
    if step is None:
        return None
    done = 0

    async def on_table(copy: TableCopy) -> None:
        nonlocal done
        done += 1
        await step(f"{stage} {copy.table}", done, total)

    return on_table


async def restore_backup(
    settings: Settings,
    store: BackupStore,
    objects: ObjectStore,
    tenant: TenantRef,
    backup: str,
    log: ActionLog,
    *,
    keep_days: int,
    step: Step | None = None,
) -> RestoreReport:
    """Restore ``backup`` over ``tenant``: nothing of the tenant changes unless the whole
    backup checks out, loads and verifies; the replaced schema is kept ``keep_days``."""
    opened = await _opened(settings, store, tenant, backup)
    tables = len(opened.manifest.tables)
    await _unpacking(step, tables)
    again = DestroyAgain(settings.secret_key)
    async with spooled(store.objects, opened) as spool:
        restored = await loading.restore(
            tenant,
            manifest_snapshot(opened.manifest),
            spool.read_table,
            keep_days=keep_days,
            reason=f"restore of backup {backup}",
            record=_recorder(log, backup),
            on_table=_counter(step, "loading", tables),
            reapply=again,
        )
        live = restored.loaded.schema
        kept_out = await _kept_out(live, spool)
        written, present = await put_back_files(objects, opened, spool, kept_out)
    # As a purge does after its commit: the files of what was destroyed leave the bucket
    # (those queued just now, and any the replaced schema still had queued).
    await remove_queued_objects(live, objects)
    return _report(
        tenant.slug, backup, restored.loaded, written, present, restored.retired, again, kept_out
    )


async def restore_as_new(
    settings: Settings,
    store: BackupStore,
    objects: ObjectStore,
    source: TenantRef,
    backup: str,
    slug: str,
    log: ActionLog,
    *,
    step: Step | None = None,
) -> RestoreReport:
    """Restore ``source``'s backup into a new tenant ``slug``, beside the live one. What
    ``source``'s destruction records say was destroyed is deleted from the copy too
    (destroyed data reappears nowhere); the records stay ``source``'s, and the files are
    ``source``'s to remove: the copy only leaves them out."""
    opened = await open_backup(settings, store, source.slug, backup)
    tables = len(opened.manifest.tables)
    await _unpacking(step, tables)
    records = await run_in_tenant(source, destruction_subjects) if retention_ready(source) else []
    again = DestroyAgain(settings.secret_key, records, queue_files=False)
    async with spooled(store.objects, opened) as spool:
        loaded = await loading.restore_as(
            slug,
            f"{source.name} (restored from {backup})",
            manifest_snapshot(opened.manifest),
            spool.read_table,
            record=_recorder(log, backup, source=source.slug),
            on_table=_counter(step, "loading", tables),
            reapply=again,
        )
        kept_out = await _kept_out(loaded.schema, spool)
        written, present = await put_back_files(objects, opened, spool, kept_out)
    return _report(slug, backup, loaded, written, present, None, again, kept_out)


async def drill_backup(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    backup: str,
    log: ActionLog,
    *,
    step: Step | None = None,
) -> RestoreReport:
    """The restore drill: load the backup into a scratch schema, verify every count and
    checksum, drop the schema; the outcome goes to the catalogue and the trail, and a
    failure is raised after it is recorded."""
    try:
        opened = await _opened(settings, store, tenant, backup)
        tables = len(opened.manifest.tables)
        await _unpacking(step, tables)
        async with spooled(store.objects, opened) as spool:
            loaded = await loading.drill(
                tenant,
                manifest_snapshot(opened.manifest),
                spool.read_table,
                on_table=_counter(step, "loading", tables),
            )
    except Exception as exc:
        # Read by the tenant's admins and auditors (backups, the compliance report): a
        # domain error's message, or the kind of failure — never a raw exception's text.
        message = exc.message if isinstance(exc, DanganError) else describe(exc)
        await _drilled(tenant, backup, log, message)
        raise
    await _drilled(tenant, backup, log, None, rows=loaded.rows)
    return _report(tenant.slug, backup, loaded, 0, 0, None)


async def _drilled(
    tenant: TenantRef, backup: str, log: ActionLog, error: str | None, rows: int = 0
) -> None:
    await note_check(tenant.id, backup, drill=True, error=error, at=datetime.now(UTC))
    details = {"backup": backup, "ok": error is None, "rows": rows}
    if error is not None:
        details["error"] = error[:500]
    await log.record_apart(tenant, "backup.drill", details=details)


def _recorder(log: ActionLog, backup: str, **extra: str) -> Record:
    async def record(action: str, details: dict[str, object]) -> object:
        return await log.record(action, details={"backup": backup, **extra, **details})

    return record


def _report(
    slug: str,
    backup: str,
    loaded: loading.Loaded,
    written: int,
    present: int,
    retired: RetiredSchema | None,
    again: DestroyAgain | None = None,
    kept_out: set[str] | None = None,
) -> RestoreReport:
    return RestoreReport(
        tenant=slug,
        backup=backup,
        from_version=loaded.from_version,
        to_version=loaded.to_version,
        tables=len(loaded.tables),
        rows=loaded.rows,
        files_written=written,
        files_present=present,
        retired=retired,
        destroyed_again=again.done.by_type() if again is not None else {},
        files_kept_out=len(kept_out or ()),
    )
