"""Sealing backup data: zstd-compressed, then encrypted with AES-256-GCM in frames.

Each backup object is encrypted with the tenant's data key; the data key is stored only
wrapped (AES-GCM) under the master key from settings, with the master key's id, so a
master key can be rotated by re-wrapping data keys without touching the objects.

An object is a header (magic, format version, a random 8-byte salt) followed by frames:
a 4-byte big-endian length, then the AES-GCM ciphertext of up to ``FRAME_BYTES`` bytes.
Frame ``n`` uses the nonce ``salt || n`` (4 bytes) and authenticates the object's name,
``n`` and whether it is the last frame. So a frame cannot be moved to another object or
another position, dropped, or repeated, and an object cut short after any frame — the
only damage that could otherwise decrypt cleanly — is told apart by its missing last
frame. Every failure raises :class:`SealError` with what is wrong, never a bare
cryptography exception.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DGBK\x01"
KEY_BYTES = 32
FRAME_BYTES = 1 << 20  # plaintext per frame: 1 MiB
# zstd level 1: on a tenant's COPY text (bench/backup_throughput.py) it compresses as well
# as level 3 (3.95x vs 4.01x) in half the time (100 vs 200 ms for 59 MB), and sealing runs
# next to PostgreSQL's COPY on the same few cores.
ZSTD_LEVEL = 1
_SALT_BYTES = 8
_LENGTH = struct.Struct(">I")
_WRAP_NONCE_BYTES = 12


class SealError(Exception):
    """The data cannot be opened: wrong key, damaged, truncated, or not a backup."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def wrap_key(master_key: bytes, data_key: bytes, master_key_id: str) -> bytes:
    """``data_key`` encrypted under ``master_key`` (nonce first; the key id authenticated)."""
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    return nonce + AESGCM(master_key).encrypt(nonce, data_key, master_key_id.encode())


def unwrap_key(master_key: bytes, wrapped: bytes, master_key_id: str) -> bytes:
    nonce, sealed = wrapped[:_WRAP_NONCE_BYTES], wrapped[_WRAP_NONCE_BYTES:]
    try:
        return AESGCM(master_key).decrypt(nonce, sealed, master_key_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise SealError(
            f"the data key does not open with master key {master_key_id!r}"
            " (a wrong master key, or a damaged key record)"
        ) from exc


def _aad(name: str, number: int, last: bool) -> bytes:
    return b"%s\x00%d\x00%d" % (name.encode(), number, int(last))


def _nonce(salt: bytes, number: int) -> bytes:
    return salt + struct.pack(">I", number)


def _frames(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """The data re-cut into frames of ``size`` bytes, each with "is it the last" (a full
    frame is held back until it is known whether more follows)."""
    buffer = bytearray()
    ready: bytes | None = None
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            if ready is not None:
                yield ready, False
            ready = bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        if ready is not None:
            yield ready, False
        ready = bytes(buffer)
    yield (ready if ready is not None else b""), True


def seal(
    data_key: bytes, name: str, chunks: Iterable[bytes], *, frame_bytes: int = FRAME_BYTES
) -> Iterator[bytes]:
    """The object ``name``: ``chunks`` compressed with zstd and sealed, as it is produced
    (for a multipart upload). Memory stays around one frame."""
    salt = os.urandom(_SALT_BYTES)
    aead = AESGCM(data_key)
    yield MAGIC + salt
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    compressed = (piece for chunk in chunks if (piece := compressor.compress(chunk)))
    tail = _Tail(compressor)
    for number, (plain, last) in enumerate(_frames(tail.after(compressed), frame_bytes)):
        sealed = aead.encrypt(_nonce(salt, number), plain, _aad(name, number, last))
        yield _LENGTH.pack(len(sealed)) + sealed


class _Tail:
    """The compressor's pieces, then what it still holds when they end."""

    def __init__(self, compressor: zstandard.ZstdCompressionObj) -> None:
        self.compressor = compressor

    def after(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        yield from pieces
        yield self.compressor.flush()


def open_sealed(data_key: bytes, name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of the sealed object ``name`` read as ``chunks``; raises
    :class:`SealError` on a wrong key, a damaged or reordered frame, or a cut."""
    reader = ChunkReader(chunks)
    header = reader.take(len(MAGIC) + _SALT_BYTES)
    if header is None or not header.startswith(MAGIC):
        raise SealError(f"{name}: not a Dangan backup object (no header)")
    salt = header[len(MAGIC) :]
    aead = AESGCM(data_key)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    number = 0
    while True:
        length = reader.take(_LENGTH.size)
        if length is None:
            raise SealError(f"{name}: truncated (it ends after frame {number - 1})")
        (size,) = _LENGTH.unpack(length)
        sealed = reader.take(size)
        if sealed is None:
            raise SealError(f"{name}: truncated inside frame {number}")
        plain, last = _open_frame(aead, salt, name, number, sealed)
        if plain:
            yield decompressor.decompress(plain)
        if last:
            break
        number += 1
    if reader.take(1) is not None:
        raise SealError(f"{name}: data after its last frame")


def _open_frame(
    aead: AESGCM, salt: bytes, name: str, number: int, sealed: bytes
) -> tuple[bytes, bool]:
    for last in (False, True):
        try:
            return aead.decrypt(_nonce(salt, number), sealed, _aad(name, number, last)), last
        except InvalidTag:
            continue
    raise SealError(
        f"{name}: frame {number} does not open (a wrong key, or the object was damaged,"
        " reordered or belongs elsewhere)"
    )


class ChunkReader:
    """Exact-size reads over a stream of chunks of any size (a read position moves
    through the buffer; consumed bytes are dropped only when the buffer is refilled)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buffer = b""
        self.position = 0

    def take(self, size: int) -> bytes | None:
        """``size`` bytes, or None when the stream ends first (with nothing, or too little)."""
        end = self.position + size
        if end > len(self.buffer):
            pieces = [self.buffer[self.position :]]
            held = len(pieces[0])
            while held < size:
                chunk = next(self.chunks, None)
                if chunk is None:
                    self.buffer, self.position = b"".join(pieces), 0
                    return None
                pieces.append(chunk)
                held += len(chunk)
            self.buffer, self.position, end = b"".join(pieces), 0, size
        taken = self.buffer[self.position : end]
        self.position = end
        return taken
