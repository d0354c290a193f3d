"""A backup's tables and files unpacked to a temporary directory before a restore, each
checked against the manifest on the way: a damaged, cut or altered backup is refused
before any schema is made. The loader then reads each table in the order it needs
(foreign keys first), which need not be the order of the backup's stream.

Everything runs in a worker thread (S3 download, decryption, decompression, checksums,
disk); the files are plain COPY text, in a directory only this process's user can read,
removed when the restore ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dangan.backups.errors import BackupError
from dangan.backups.reader import OpenBackup, StreamCheck, pieces
from dangan.storage import ObjectStore

_READ = 1 << 20


@dataclass
class Spool:
    root: Path
    tables: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    async def read_table(self, name: str) -> AsyncIterator[bytes]:
        """A table's COPY text in chunks (its file read in a worker thread)."""
        path = self.tables.get(name)
        if path is None:
            raise BackupError(f"the backup holds no table {name!r}")
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, _READ):
                yield chunk


@asynccontextmanager
async def spooled(
    objects: ObjectStore,
    opened: OpenBackup,
    on_stream: Callable[[str], None] | None = None,
) -> AsyncIterator[Spool]:
    """The backup unpacked and checked, for the duration of the block."""
    root = Path(tempfile.mkdtemp(prefix="dangan-restore-"))
    try:
        spool = Spool(root)
        await asyncio.to_thread(_unpack, objects, opened, spool, on_stream)
        yield spool
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unpack(
    objects: ObjectStore,
    opened: OpenBackup,
    spool: Spool,
    on_stream: Callable[[str], None] | None,
) -> None:
    manifest = opened.manifest
    expected: dict[str, dict[str, tuple[int | None, int, str]]] = {
        "data": {t.name: (t.rows, t.bytes, t.sha256) for t in manifest.tables},
        "attachments": {a.key: (None, a.bytes, a.sha256) for a in manifest.attachments},
    }
    for name, wanted in expected.items():
        into = spool.tables if name == "data" else spool.files
        directory = spool.root / name
        directory.mkdir()
        _unpack_object(objects, opened, name, wanted, directory, into, on_stream)


def _unpack_object(
    objects: ObjectStore,
    opened: OpenBackup,
    name: str,
    wanted: dict[str, tuple[int | None, int, str]],
    directory: Path,
    into: dict[str, Path],
    on_stream: Callable[[str], None] | None,
) -> None:
    sink: BinaryIO | None = None
    check = StreamCheck()
    for piece in pieces(objects, opened, name):
        if piece.end:
            assert sink is not None
            sink.close()
            _compare(name, piece.name, check, wanted)
            if on_stream is not None:
                on_stream(piece.name)
        elif not piece.data:
            if piece.name not in wanted or piece.name in into:
                raise BackupError(f"{name}: {piece.name} is not in the manifest, or is there twice")
            path = directory / hashlib.sha256(piece.name.encode()).hexdigest()
            into[piece.name] = path
            sink, check = path.open("wb"), StreamCheck()
        else:
            assert sink is not None
            check.add(piece.data)
            sink.write(piece.data)
    missing = sorted(set(wanted) - set(into))
    if missing:
        raise BackupError(f"{name}: the backup lacks {', '.join(missing[:5])}")


def _compare(
    name: str, stream: str, check: StreamCheck, wanted: dict[str, tuple[int | None, int, str]]
) -> None:
    rows, size, sha256 = wanted[stream]
    if check.sha256 != sha256 or check.size != size or rows not in (None, check.rows):
        raise BackupError(
            f"{name}: {stream} does not match the manifest ({check.rows} rows, {check.size}"
            " bytes read): the backup is damaged"
        )


async def put_back_files(
    objects: ObjectStore,
    opened: OpenBackup,
    spool: Spool,
    leave_out: Collection[str] = frozenset(),
) -> tuple[int, int]:
    """Write the backup's attachment files to the main bucket where they are missing
    (an object key names one file for good, so one that is there is the same file),
    but those in ``leave_out`` (the restored schema does not want them: their customer
    was destroyed since the backup); returns (written, already there)."""
    written = present = 0
    types = {entry.key: entry.content_type for entry in opened.manifest.attachments}
    for key, path in sorted(spool.files.items()):
        if key in leave_out:
            continue
        if await objects.stat(key) is not None:
            present += 1
            continue
        size = path.stat().st_size
        with path.open("rb") as source:
            await objects.put_stream(key, source, size, types[key])
        written += 1
    return written, present
