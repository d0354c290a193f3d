"""Where backups go: the bucket ``<s3_bucket>-backups`` (made with object lock), and an
optional replica bucket on a second S3 endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

from dangan.backups.manifest import PREFIX
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_locked_bucket, s3_client

log = structlog.get_logger("dangan.backups")


@dataclass(frozen=True)
class BackupStore:
    objects: ObjectStore  # the backup bucket
    lock_mode: str | None  # GOVERNANCE | COMPLIANCE; None: the bucket has no object lock
    lock_days: int
    replica: ObjectStore | None = None
    replica_lock_mode: str | None = None  # None: the replica bucket has no object lock

    def lock_until(self, now: datetime) -> datetime | None:
        return now + timedelta(days=self.lock_days) if self.lock_mode else None


def _prepare(client: Minio, bucket: str) -> bool:
    locked = ensure_locked_bucket(client, bucket)
    # A backup cut off mid-upload leaves an incomplete multipart upload: invisible, but
    # paid for. S3 removes it after a day.
    rule = Rule(
        ENABLED,
        rule_filter=Filter(prefix=f"{PREFIX}/"),
        rule_id="abort-incomplete-backups",
        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(1),
    )
    # (An S3 without lifecycle rules keeps them until they are aborted by hand.)
    with contextlib.suppress(S3Error):
        client.set_bucket_lifecycle(bucket, LifecycleConfig([rule]))
    return locked


async def open_backup_store(
    client: Minio, settings: Settings, replica: Minio | None = None
) -> BackupStore:
    locked = await asyncio.to_thread(_prepare, client, settings.backup_bucket)
    replica_store = None
    replica_locked = False
    if replica is not None:
        bucket = settings.backup_replica_bucket or settings.backup_bucket
        try:
            replica_locked = await asyncio.to_thread(_prepare, replica, bucket)
        except (S3Error, OSError) as exc:
            # Out of reach now: the worker starts anyway, copies fail (recorded) and
            # are retried by the nightly upkeep; they are still asked to be locked.
            log.warning("backup replica unreachable", bucket=bucket, error=str(exc))
            replica_locked = True
        replica_store = ObjectStore(replica, bucket)
    return BackupStore(
        objects=ObjectStore(client, settings.backup_bucket),
        lock_mode=settings.backup_object_lock_mode if locked else None,
        lock_days=settings.backup_lock_days,
        replica=replica_store,
        replica_lock_mode=settings.backup_object_lock_mode if replica_locked else None,
    )


def replica_client(settings: Settings) -> Minio | None:
    """The replica endpoint's client, if one is configured."""
    if not settings.backup_replica_endpoint:
        return None
    return Minio(
        settings.backup_replica_endpoint,
        access_key=settings.backup_replica_access_key,
        secret_key=settings.backup_replica_secret_key,
        secure=settings.backup_replica_secure,
        region="us-east-1",
    )


async def open_configured_store(settings: Settings, endpoints: Endpoints) -> BackupStore:
    """The backup store of the configured S3 (and replica, if one is configured)."""
    return await open_backup_store(s3_client(endpoints), settings, replica_client(settings))
