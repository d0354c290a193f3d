"""Reading a backup back: its manifest, its sealed objects opened and un-framed, and
:func:`verify_backup`, which reads everything and checks every count and checksum.

The S3 download, decryption, decompression and checksums run in one worker thread per
object (all synchronous libraries that release the GIL); the event loop only waits.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from minio.error import S3Error

from dangan.backups.errors import BackupError, BackupMissing
from dangan.backups.framing import Piece, read_streams
from dangan.backups.keys import open_data_key
from dangan.backups.manifest import Manifest, check_mac, decode_manifest, manifest_key
from dangan.backups.sealing import SealError, open_sealed
from dangan.backups.store import BackupStore
from dangan.settings import Settings
from dangan.storage import ObjectStore

_READ = 1 << 20


@dataclass(frozen=True)
class OpenBackup:
    manifest: Manifest
    data_key: bytes


async def open_backup(settings: Settings, store: BackupStore, slug: str, backup: str) -> OpenBackup:
    """The manifest of ``slug``'s backup ``backup``, checked, and its data key."""
    key = manifest_key(slug, backup)
    try:
        raw = await store.objects.get_bytes(key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            raise BackupMissing(
                f"backup {backup} of {slug} has no manifest ({key} is not in bucket"
                f" {store.objects.bucket}): it never finished, or it is not this tenant's"
            ) from exc
        raise
    manifest = decode_manifest(raw, key)
    if manifest.tenant != slug or manifest.backup_id != backup:
        raise BackupError(f"{key}: the manifest describes {manifest.tenant}/{manifest.backup_id}")
    data_key = open_data_key(settings, bytes.fromhex(manifest.wrapped_key), manifest.master_key_id)
    check_mac(manifest, data_key, key)
    return OpenBackup(manifest, data_key)


def pieces(objects: ObjectStore, opened: OpenBackup, name: str) -> Iterator[Piece]:
    """The framed streams of the backup's object ``name`` ("data" or "attachments"), read
    from S3 and opened as they arrive (blocking: call it from a worker thread)."""
    entry = opened.manifest.objects.get(name)
    if entry is None:
        raise BackupError(f"the manifest names no object {name!r}")
    try:
        response = objects.client.get_object(objects.bucket, entry.key, version_id=entry.version_id)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchVersion"):
            raise BackupError(f"{entry.key} is missing from the bucket") from exc
        raise
    try:
        plain = open_sealed(opened.data_key, entry.key, response.stream(_READ))
        yield from read_streams(_opened(plain), entry.key)
    finally:
        response.close()
        response.release_conn()


def _opened(plain: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from plain
    except SealError as exc:
        raise BackupError(str(exc)) from exc


class StreamCheck:
    """Rows, size and SHA-256 of one stream, as it is read."""

    def __init__(self) -> None:
        self.rows = 0
        self.size = 0
        self.hasher = hashlib.sha256()

    def add(self, data: bytes) -> None:
        self.rows += data.count(b"\n")
        self.size += len(data)
        self.hasher.update(data)

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    tenant: str
    backup: str
    tables: int
    rows: int
    attachments: int
    stored_bytes: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_object(
    objects: ObjectStore,
    opened: OpenBackup,
    name: str,
    expected: dict[str, tuple[int | None, int, str]],
    on_stream: Callable[[str], None] | None = None,
) -> list[str]:
    """Read one object whole; what differs from ``expected`` (name -> rows, bytes, sha)."""
    problems: list[str] = []
    seen: dict[str, StreamCheck] = {}
    current: StreamCheck | None = None
    for piece in pieces(objects, opened, name):
        if piece.end:
            if on_stream is not None:
                on_stream(piece.name)
            continue
        if not piece.data:
            if piece.name in seen:
                problems.append(f"{name}: {piece.name} appears twice")
            current = seen[piece.name] = StreamCheck()
            continue
        assert current is not None
        current.add(piece.data)
    for stream, (rows, size, sha256) in expected.items():
        check = seen.pop(stream, None)
        if check is None:
            problems.append(f"{name}: {stream} is missing")
        elif check.sha256 != sha256 or check.size != size or rows not in (None, check.rows):
            problems.append(
                f"{name}: {stream} does not match its manifest entry"
                f" ({check.rows} rows, {check.size} bytes read)"
            )
    problems.extend(f"{name}: {stream} is not in the manifest" for stream in seen)
    return problems


async def verify_backup(
    settings: Settings,
    store: BackupStore,
    slug: str,
    backup: str,
    on_stream: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Download, decrypt and check every table and file of a backup against its manifest.
    A backup that cannot be opened at all (no manifest, wrong key, altered manifest)
    raises :class:`BackupError`; damage inside an object is reported as a problem."""
    opened = await open_backup(settings, store, slug, backup)
    manifest = opened.manifest
    tables: dict[str, tuple[int | None, int, str]] = {
        t.name: (t.rows, t.bytes, t.sha256) for t in manifest.tables
    }
    files: dict[str, tuple[int | None, int, str]] = {
        a.key: (None, a.bytes, a.sha256) for a in manifest.attachments
    }
    problems: list[str] = []
    for name, expected in (("data", tables), ("attachments", files)):
        try:
            problems += await asyncio.to_thread(
                _check_object, store.objects, opened, name, expected, on_stream
            )
        except BackupError as exc:
            problems.append(exc.message)
    return VerifyReport(
        tenant=slug,
        backup=backup,
        tables=len(manifest.tables),
        rows=manifest.rows,
        attachments=len(manifest.attachments),
        stored_bytes=manifest.stored_bytes,
        problems=problems,
    )
