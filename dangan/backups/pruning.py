"""Pruning a tenant's backups by the keep-policy (:mod:`dangan.backups.keeping`), as
object lock allows.

One run, for one tenant, in one transaction that holds the tenant's prune lock:

1. A complete backup missing from the catalogue (a manifest written by a run that died
   before its catalogue row) is adopted first: the policy sees every backup.
2. Each backup the policy keeps has its objects (``data``, ``attachments`` and
   ``manifest.json``, on the replica too once copied there) locked until its keep-until,
   if they are not already locked as long: locks are lengthened, never shortened.
3. Each backup the policy drops is removed once its lock has run out: every version of
   every object under its prefix, the manifest first (so a half-removed backup never
   looks complete), then its catalogue row. While S3 refuses (the lock holds) it is left
   whole, reported as waiting, and tried again by the next run.
4. Objects under a prefix that has no manifest and no catalogue row, all older than a
   day (a crashed run's), are removed as well, once their locks (if any) allow; so are
   versions in a kept backup that its manifest does not name (an earlier attempt's),
   and, on the replica, copies of backups the catalogue no longer keeps.
5. The catalogue's changes and a ``backup.prune`` event listing what was removed and
   locked are written together, at the end. A run that changed nothing writes nothing:
   a second run the same night is a no-op.

Governance is never bypassed. A replica that cannot be reached is reported as a
problem; the main bucket is pruned all the same.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from minio.error import S3Error
from tortoise.transactions import in_transaction

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import BackupRecord, forget_backup, list_backups, note_locked
from dangan.backups.errors import BackupError
from dangan.backups.keeping import Keeper, KeepPolicy, choose
from dangan.backups.manifest import PREFIX
from dangan.backups.reader import open_backup
from dangan.backups.store import BackupStore
from dangan.backups.transient import describe
from dangan.backups.writer import adopt_backup
from dangan.settings import Settings
from dangan.storage import ObjectStore, ObjectVersion
from dangan.tenants.scope import TenantRef, tenant_part

MANIFEST = "manifest.json"
ORPHAN_AGE = timedelta(days=1)
ACTION = "backup.prune"


class PruneBusy(BackupError):
    """Another prune of this tenant's backups is running."""


@dataclass(frozen=True)
class Waiting:
    """A backup (or leftovers of one) that S3 would not remove yet: its lock holds."""

    backup: str
    bucket: str
    locked_until: datetime | None


@dataclass
class PruneReport:
    tenant: str
    dry_run: bool = False
    kept: list[Keeper] = field(default_factory=list)  # newest first
    removed: list[str] = field(default_factory=list)  # dropped backups now gone
    waiting: list[Waiting] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # prefixes without a manifest
    strays: int = 0  # versions in kept backups that their manifest does not name
    replica_removed: list[str] = field(default_factory=list)
    locked: dict[str, datetime] = field(default_factory=dict)  # lengthened, to
    adopted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.removed
            or self.orphans
            or self.strays
            or self.replica_removed
            or self.locked
            or self.adopted
        )

    def details(self) -> dict[str, Any]:
        """What the ``backup.prune`` event says."""
        return {
            "removed": self.removed,
            "orphans": self.orphans,
            "strays": self.strays,
            "replicaRemoved": self.replica_removed,
            "locked": {backup: until.isoformat() for backup, until in self.locked.items()},
            "adopted": self.adopted,
            "waiting": sorted({w.backup for w in self.waiting}),
            "kept": len(self.kept),
            "problems": self.problems,
        }


@dataclass
class _Bucket:
    """One bucket's view of the tenant's backups: versions by backup id."""

    name: str  # "main" or "replica"
    objects: ObjectStore
    lock_mode: str | None
    backups: dict[str, list[ObjectVersion]]

    def store(self, main: BackupStore) -> BackupStore:
        return BackupStore(self.objects, self.lock_mode, main.lock_days)


def tenant_prefix(slug: str) -> str:
    return f"{PREFIX}/{slug}/"


def prune_lock_key(tenant: TenantRef) -> int:
    return zlib.crc32(f"dangan-backup-prune:{tenant.id}".encode())


async def prune_backups(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    now: datetime,
    actions: ActionLog,
    *,
    dry_run: bool = False,
) -> PruneReport:
    """Apply the keep-policy to ``tenant``'s backups as of ``now`` (see the module).
    ``dry_run``: change nothing, report what would be removed and locked (backups
    waiting on their lock are then reported as removed)."""
    report = PruneReport(tenant.slug, dry_run=dry_run)
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "SELECT pg_try_advisory_xact_lock($1) AS ok", [prune_lock_key(tenant)]
        )
        if not rows[0]["ok"]:
            raise PruneBusy(f"a prune of {tenant.slug}'s backups is already running")
        # The catalogue before the listing: a backup listed there has its objects written.
        records = {r.id: r for r in await list_backups(tenant.id, limit=None)}
        main = _Bucket(
            "main", store.objects, store.lock_mode, await _listing(store.objects, tenant)
        )
        await _adopt(settings, store, tenant, main, records, report)
        plan = choose(records.values(), KeepPolicy.from_settings(settings), now)
        report.kept = list(plan.keep.values())
        replica = await _replica(store, tenant, report)
        for keeper in report.kept:
            await _lock(settings, store, tenant, keeper, records[keeper.id], main, replica, report)
        for bucket in (main, replica) if replica else (main,):
            try:
                await _tidy(settings, store, tenant, bucket, plan.keep, records, now, report)
            except Exception as exc:
                if bucket is main:
                    raise
                report.problems.append(f"replica: {describe(exc)}")
        if not dry_run:
            for backup, until in report.locked.items():
                await note_locked(conn, tenant.id, backup, until)
            for backup in report.removed:
                await forget_backup(conn, tenant.id, backup)
            if report.changed:
                async with tenant_part(conn, tenant):
                    await actions.record(ACTION, details=report.details())
    return report


async def _listing(objects: ObjectStore, tenant: TenantRef) -> dict[str, list[ObjectVersion]]:
    """Every version under ``backups/<slug>/``, by backup id."""
    found: dict[str, list[ObjectVersion]] = defaultdict(list)
    prefix = tenant_prefix(tenant.slug)
    for version in await objects.versions(prefix):
        backup, slash, name = version.key[len(prefix) :].partition("/")
        if slash and name:
            found[backup].append(version)
    return dict(found)


def _has_manifest(versions: list[ObjectVersion]) -> bool:
    return any(v.key.endswith("/" + MANIFEST) and not v.deleted for v in versions)


async def _adopt(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    main: _Bucket,
    records: dict[str, BackupRecord],
    report: PruneReport,
) -> None:
    for backup, versions in sorted(main.backups.items()):
        if backup in records or not _has_manifest(versions):
            continue
        if report.dry_run:
            report.adopted.append(backup)
            continue
        try:
            record = await adopt_backup(settings, store, tenant, backup)
        except BackupError as exc:
            report.problems.append(f"{backup}: not adopted: {exc.message}")
            continue
        if record is not None:
            records[backup] = record
            report.adopted.append(backup)


async def _replica(store: BackupStore, tenant: TenantRef, report: PruneReport) -> _Bucket | None:
    if store.replica is None:
        return None
    try:
        backups = await _listing(store.replica, tenant)
    except Exception as exc:
        report.problems.append(f"replica: {describe(exc)}")
        return None
    return _Bucket("replica", store.replica, store.replica_lock_mode, backups)


async def _lock(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    keeper: Keeper,
    record: BackupRecord,
    main: _Bucket,
    replica: _Bucket | None,
    report: PruneReport,
) -> None:
    """Lock a kept backup's objects until its keep-until, in the main bucket and on the
    replica once copied there. The catalogue's ``locked_until`` (which spares the next
    runs the work) is moved only when both are done: what failed is tried again."""
    if record.locked_until is not None and record.locked_until >= keeper.until:
        return
    buckets = [main] if main.lock_mode else []
    on_replica = store.replica_lock_mode is not None and record.replicated_at is not None
    if on_replica and replica is not None:
        buckets.append(replica)
    if not buckets:
        return
    if report.dry_run:
        report.locked[keeper.id] = keeper.until
        return
    done = not on_replica or replica is not None  # an unreachable replica: next time
    for bucket in buckets:
        mode = bucket.lock_mode or ""
        try:
            for key, version_id in await _named(settings, store, tenant, bucket, keeper.id):
                await bucket.objects.lengthen_lock(key, version_id, mode=mode, until=keeper.until)
        except Exception as exc:
            # An unreachable replica is a problem to report; so is a main bucket's refusal
            # (anything else from the main bucket fails the run, to be retried).
            if bucket is main and not isinstance(exc, (BackupError, S3Error)):
                raise
            report.problems.append(
                f"{keeper.id}: not locked in the {bucket.name} bucket: {describe(exc)}"
            )
            done = False
    if done:
        report.locked[keeper.id] = keeper.until


async def _named(
    settings: Settings, store: BackupStore, tenant: TenantRef, bucket: _Bucket, backup: str
) -> list[tuple[str, str | None]]:
    """The versions a backup consists of in ``bucket``: those its manifest (checked)
    names, and the manifest's own."""
    opened = await open_backup(settings, bucket.store(store), tenant.slug, backup)
    named = [(entry.key, entry.version_id) for entry in opened.manifest.objects.values()]
    manifests = [
        (v.key, v.version_id)
        for v in bucket.backups.get(backup, [])
        if v.key.endswith("/" + MANIFEST) and not v.deleted
    ]
    return named + manifests


async def _tidy(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    bucket: _Bucket,
    keep: dict[str, Keeper],
    records: dict[str, BackupRecord],
    now: datetime,
    report: PruneReport,
) -> None:
    """Remove from ``bucket`` what the policy no longer keeps (steps 3 and 4)."""
    old = now - ORPHAN_AGE
    main = bucket.name == "main"
    ids = sorted(set(bucket.backups) | (set(records) if main else set()))
    for backup in ids:
        versions = bucket.backups.get(backup, [])
        aged = all(v.modified is not None and v.modified <= old for v in versions)
        if backup in keep:
            if main and not _has_manifest(versions):
                report.problems.append(f"{backup}: kept, but its manifest is not in the bucket")
            elif main or records[backup].replicated_at is not None:
                await _remove_strays(settings, store, tenant, bucket, backup, old, report)
            continue
        if backup in records:  # dropped by the policy
            gone = await _remove(bucket, backup, versions, report)
            if gone and main:
                report.removed.append(backup)
            elif gone and versions:
                report.replica_removed.append(backup)
            continue
        # Not in the catalogue: a run's objects without a manifest (on the replica, a
        # copy of a backup no longer listed), left alone while a day young (under way).
        if not aged or (main and _has_manifest(versions)):
            continue
        if await _remove(bucket, backup, versions, report):
            (report.orphans if main else report.replica_removed).append(backup)


async def _remove(
    bucket: _Bucket, backup: str, versions: list[ObjectVersion], report: PruneReport
) -> bool:
    """Remove every version of a backup's objects, the manifest's first, delete markers
    last; False (and the backup reported as waiting) at the first one S3 refuses. True
    once its manifest is gone: what is left is no backup, and is tried again later."""
    order = sorted(versions, key=lambda v: (v.deleted, not v.key.endswith("/" + MANIFEST), v.key))
    if report.dry_run:
        return True
    for version in order:
        if not await _remove_version(bucket, backup, version, report):
            return not _has_manifest([v for v in order[order.index(version) :]])
    return True


async def _remove_version(
    bucket: _Bucket, backup: str, version: ObjectVersion, report: PruneReport
) -> bool:
    """Remove one version; False (reported as waiting) if its lock refuses."""
    try:
        await bucket.objects.remove(version.key, version.version_id)
    except S3Error as exc:
        if exc.code != "AccessDenied":
            raise
        report.waiting.append(
            Waiting(backup, bucket.name, await _locked_until(bucket.objects, version))
        )
        return False
    return True


async def _locked_until(objects: ObjectStore, version: ObjectVersion) -> datetime | None:
    info = await objects.stat(version.key, version.version_id)
    if info is None or info.locked_until is None:
        return None
    return datetime.fromisoformat(info.locked_until)


async def _remove_strays(
    settings: Settings,
    store: BackupStore,
    tenant: TenantRef,
    bucket: _Bucket,
    backup: str,
    old: datetime,
    report: PruneReport,
) -> None:
    """Versions of a kept backup's objects that its manifest does not name, older than
    a day (an attempt that died after writing them): only looked for when a key has
    more than one version."""
    versions = bucket.backups.get(backup, [])
    keys = [v.key for v in versions if not v.key.endswith("/" + MANIFEST)]
    if len(keys) == len(set(keys)):
        return
    try:
        named = set(await _named(settings, store, tenant, bucket, backup))
    except BackupError as exc:
        report.problems.append(f"{backup}: {exc.message}")
        return
    for version in versions:
        stray = (version.key, version.version_id) not in named and not version.key.endswith(
            "/" + MANIFEST
        )
        old_enough = version.modified is not None and version.modified <= old
        if not (stray and old_enough):
            continue
        if report.dry_run or await _remove_version(bucket, backup, version, report):
            report.strays += 1
