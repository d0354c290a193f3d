"""Objects in S3 (minio client): the client opened once per process, and the few
operations the services need, as coroutines (minio is synchronous; each call runs in a
worker thread).

Every object is encrypted at rest: the bucket's default encryption is SSE-S3 (set in
:func:`ensure_bucket`), and :meth:`ObjectStore.stat` reports whether an object really is.
Callers upload and download through short-lived presigned URLs, issued by the services
only after authorization.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error
from minio.retention import Retention
from minio.sseconfig import Rule, SSEConfig

from dangan.devstack import Endpoints


def s3_client(endpoints: Endpoints) -> Minio:
    return Minio(
        endpoints.s3_endpoint,
        access_key=endpoints.s3_access_key,
        secret_key=endpoints.s3_secret_key,
        secure=endpoints.s3_secure,
        region="us-east-1",
    )


def ensure_bucket(client: Minio, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.set_bucket_encryption(bucket, SSEConfig(Rule.new_sse_s3_rule()))


def ensure_locked_bucket(client: Minio, bucket: str) -> bool:
    """Create ``bucket`` with object lock (and so versioning) if it is missing; True if
    its objects can be locked. Object lock can only be chosen when a bucket is created:
    a bucket that exists without it stays without it (the caller writes unlocked)."""
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket, object_lock=True)
    client.set_bucket_encryption(bucket, SSEConfig(Rule.new_sse_s3_rule()))
    try:
        client.get_object_lock_config(bucket)
    except S3Error as exc:
        if exc.code == "ObjectLockConfigurationNotFoundError":
            return False
        raise
    return True


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None
    encrypted: bool
    lock_mode: str | None = None
    locked_until: str | None = None


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    deleted: bool  # a delete marker: the object "removed", its versions still there
    modified: datetime | None = field(default=None, compare=False)  # set by S3 on writing


class ObjectStore:
    """One bucket of one S3 endpoint."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def upload_url(self, key: str, expires: timedelta) -> str:
        return await asyncio.to_thread(
            self.client.presigned_put_object, self.bucket, key, expires=expires
        )

    async def download_url(self, key: str, expires: timedelta, *, filename: str) -> str:
        disposition = f"attachment; filename*=UTF-8''{_quote(filename)}"
        return await asyncio.to_thread(
            self.client.presigned_get_object,
            self.bucket,
            key,
            expires=expires,
            response_headers={"response-content-disposition": disposition},
        )

    async def stat(self, key: str, version_id: str | None = None) -> ObjectInfo | None:
        """Size, type, encryption and lock of an object (or of one version of it); None
        if there is none."""
        try:
            found = await asyncio.to_thread(
                self.client.stat_object, self.bucket, key, version_id=version_id
            )
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise
        headers = {k.lower(): v for k, v in (found.metadata or {}).items()}
        return ObjectInfo(
            size=int(found.size or 0),
            content_type=found.content_type,
            encrypted=bool(headers.get("x-amz-server-side-encryption")),
            lock_mode=headers.get("x-amz-object-lock-mode"),
            locked_until=headers.get("x-amz-object-lock-retain-until-date"),
        )

    async def sha256(self, key: str) -> str:
        """SHA-256 of an object's content, read as a stream."""

        def digest() -> str:
            response = self.client.get_object(self.bucket, key)
            try:
                hasher = hashlib.sha256()
                for chunk in response.stream(256 * 1024):
                    hasher.update(chunk)
                return hasher.hexdigest()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(digest)

    async def put_bytes(self, key: str, data: bytes, content_type: str, **extra: Any) -> None:
        """Write an object; ``extra`` goes to minio's ``put_object`` (metadata, retention)."""
        await self.put_stream(key, io.BytesIO(data), len(data), content_type, **extra)

    async def put_stream(
        self, key: str, stream: BinaryIO, length: int, content_type: str, **extra: Any
    ) -> None:
        """Write an object of ``length`` bytes read from ``stream`` (say, a temporary
        file too large to hold in memory)."""
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            stream,
            length,
            content_type=content_type,
            **extra,
        )

    async def put_locked(
        self, key: str, data: bytes, content_type: str, *, mode: str, until: datetime
    ) -> None:
        """Write an object that cannot be deleted (nor its content changed: a write to the
        same key makes a new version) before ``until``. S3 wants a checksum of a locked
        upload: SHA-256, sent as ``x-amz-checksum-sha256``."""
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        await self.put_bytes(
            key,
            data,
            content_type,
            metadata={"x-amz-checksum-sha256": checksum, "x-amz-sdk-checksum-algorithm": "SHA256"},
            retention=Retention(mode, until),
        )

    async def versions(self, prefix: str, *, before: str | None = None) -> list[ObjectVersion]:
        """Every version (and delete marker) of the objects under ``prefix``, in key
        order; only keys before ``before`` if given (the listing stops there: pages
        beyond are not asked for)."""

        def listing() -> list[ObjectVersion]:
            found = self.client.list_objects(
                self.bucket, prefix=prefix, recursive=True, include_version=True
            )
            versions = []
            for item in found:
                key = str(item.object_name)
                if before is not None and key >= before:
                    break
                versions.append(
                    ObjectVersion(key, item.version_id, item.is_delete_marker, item.last_modified)
                )
            return versions

        return await asyncio.to_thread(listing)

    async def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, key, version_id=version_id)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def head_bytes(self, key: str, length: int) -> bytes:
        """The first ``length`` bytes of an object (to recognise its file type)."""

        def read() -> bytes:
            response = self.client.get_object(self.bucket, key, offset=0, length=length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def copy(self, source: str, target: str) -> None:
        """Copy an object inside the bucket (server-side; the bucket's encryption applies)."""
        await asyncio.to_thread(
            self.client.copy_object, self.bucket, target, CopySource(self.bucket, source)
        )

    async def extend_lock(
        self, key: str, version_id: str | None, *, mode: str, until: datetime
    ) -> None:
        """Lock one version until ``until`` (S3 lets a lock be lengthened, never shortened
        without bypassing governance, which this never asks for)."""
        await asyncio.to_thread(
            self.client.set_object_retention,
            self.bucket,
            key,
            Retention(mode, until),
            version_id=version_id,
        )

    async def lengthen_lock(
        self, key: str, version_id: str | None, *, mode: str, until: datetime
    ) -> bool:
        """Lock one version until at least ``until``; False if it already was. The lock
        in force is read first: a lock is never shortened (some S3 servers, moto among
        them, let a governance lock be shortened without being asked to bypass it)."""
        info = await self.stat(key, version_id)
        held = info.locked_until if info is not None else None
        if held is not None and datetime.fromisoformat(held) >= until:
            return False
        await self.extend_lock(key, version_id, mode=mode, until=until)
        return True

    async def remove(self, key: str, version_id: str | None = None) -> None:
        """Remove an object (in a versioned bucket: hide it behind a delete marker), or
        one version of it (refused while that version is locked)."""
        await asyncio.to_thread(self.client.remove_object, self.bucket, key, version_id=version_id)


def _quote(filename: str) -> str:
    return quote(filename, safe="")
