"""Several named byte streams in one object (the tables of a backup, or its attachments).

Before sealing, a backup object is a sequence of streams, each: ``S``, the name's length
(2 bytes, big-endian) and the name in UTF-8; then chunks, each a 4-byte big-endian length
and that many bytes; then a zero length. One object per backup keeps a tenant's backup to
one multipart upload whatever its number of tables (most are small).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dangan.backups.errors import BackupError
from dangan.backups.sealing import ChunkReader

_START = b"S"
_NAME = struct.Struct(">H")
_CHUNK = struct.Struct(">I")
END = _CHUNK.pack(0)
MAX_CHUNK = (1 << 32) - 1


def start(name: str) -> bytes:
    encoded = name.encode()
    return _START + _NAME.pack(len(encoded)) + encoded


def chunk(data: bytes) -> bytes:
    """``data`` (not empty) as one chunk of the open stream."""
    return _CHUNK.pack(len(data)) + data


def chunk_header(size: int) -> bytes:
    """What goes before ``size`` (not 0) bytes of a chunk; writing it and then the bytes
    themselves saves :func:`chunk`'s copy of them."""
    return _CHUNK.pack(size)


@dataclass(frozen=True)
class Piece:
    """What the reader found next: a stream's start (``data`` empty, ``end`` False), a
    chunk of it, or its end."""

    name: str
    data: bytes = b""
    end: bool = False


def read_streams(source: Iterable[bytes], object_name: str) -> Iterator[Piece]:
    """The pieces of the framed plaintext ``source`` (chunks of any size), in order."""
    reader = ChunkReader(source)
    while (marker := reader.take(1)) is not None:
        if marker != _START:
            raise BackupError(f"{object_name}: damaged (no stream starts where one should)")
        name = _exactly(reader, _NAME.size, object_name, "a stream's name")
        raw = _exactly(reader, _NAME.unpack(name)[0], object_name, "a stream's name")
        stream = raw.decode()
        yield Piece(stream)
        while size := _CHUNK.unpack(_exactly(reader, _CHUNK.size, object_name, stream))[0]:
            yield Piece(stream, _exactly(reader, size, object_name, stream))
        yield Piece(stream, end=True)


def _exactly(reader: ChunkReader, size: int, object_name: str, inside: str) -> bytes:
    taken = reader.take(size)
    if taken is None:
        raise BackupError(f"{object_name}: ends early, inside {inside}")
    return taken
