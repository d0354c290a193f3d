"""Sealed backup objects open to exactly what went in, and every kind of damage — a
wrong key, a flipped byte, a frame moved, dropped or borrowed from another object, a
cut at any point — is refused by name instead of opening to something else."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.backups.sealing import (
    MAGIC,
    SealError,
    new_data_key,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)

NAME = "backups/east/0001/customer.copy"
FRAME = 64  # small frames, so that small data spans several


def sealed(data: bytes, key: bytes, name: str = NAME, pieces: int = 7) -> bytes:
    chunks = [data[i : i + pieces] for i in range(0, len(data), pieces)]
    return b"".join(seal(key, name, chunks, frame_bytes=FRAME))


def opened(blob: bytes, key: bytes, name: str = NAME, piece: int = 5) -> bytes:
    return b"".join(
        open_sealed(key, name, [blob[i : i + piece] for i in range(0, len(blob), piece)])
    )


def frames(blob: bytes) -> list[bytes]:
    """The frames of a sealed object, each with its length prefix."""
    at, found = len(MAGIC) + 8, []
    while at < len(blob):
        (size,) = struct.unpack(">I", blob[at : at + 4])
        found.append(blob[at : at + 4 + size])
        at += 4 + size
    return found


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=50))
def test_what_goes_in_comes_out(data: bytes, pieces: int) -> None:
    key = new_data_key()
    assert opened(sealed(data, key, pieces=pieces), key) == data


def test_it_compresses_and_hides_the_content() -> None:
    data = ("13800001234,张三,330106199001011234\n" * 2000).encode()
    blob = sealed(data, new_data_key())
    assert len(blob) < len(data) / 10
    assert b"13800001234" not in blob and "张三".encode() not in blob


def incompressible() -> bytes:
    return os.urandom(FRAME * 4 + 10)  # random: about five frames after compression


def test_a_wrong_key_is_named() -> None:
    blob = sealed(incompressible(), new_data_key())
    with pytest.raises(SealError, match="frame 0 does not open"):
        opened(blob, new_data_key())


def test_a_flipped_byte_is_found() -> None:
    key = new_data_key()
    blob = bytearray(sealed(incompressible(), key))
    blob[len(blob) // 2] ^= 1
    with pytest.raises(SealError, match="does not open"):
        opened(bytes(blob), key)


@pytest.mark.parametrize("cut", [0, 3, len(MAGIC) + 8, len(MAGIC) + 8 + 2, -1, -40])
def test_a_cut_anywhere_is_found(cut: int) -> None:
    key = new_data_key()
    blob = sealed(incompressible(), key)
    with pytest.raises(SealError, match=r"truncated|no header"):
        opened(blob[:cut], key)


def test_a_cut_after_a_whole_frame_is_found() -> None:
    """The damage that would otherwise decrypt cleanly: whole frames missing at the end."""
    key = new_data_key()
    blob = sealed(incompressible(), key)
    kept = frames(blob)[:-1]
    with pytest.raises(SealError, match="truncated"):
        opened(blob[: len(MAGIC) + 8] + b"".join(kept), key)


def test_frames_cannot_be_reordered_dropped_or_borrowed() -> None:
    key = new_data_key()
    blob = sealed(incompressible(), key)
    head, parts = blob[: len(MAGIC) + 8], frames(blob)
    swapped = [parts[1], parts[0], *parts[2:]]
    dropped = [parts[0], *parts[2:]]
    for damaged in (swapped, dropped):
        with pytest.raises(SealError, match=r"frame [01] does not open"):
            opened(head + b"".join(damaged), key)
    other = sealed(incompressible(), key, name="backups/east/0001/contract.copy")
    with pytest.raises(SealError, match="does not open"):
        opened(other, key)  # the same key, another object's name
    with pytest.raises(SealError, match="after its last frame"):
        opened(blob + parts[-1], key)


def test_data_keys_open_only_with_their_master_key_and_id() -> None:
    master, data_key = os.urandom(32), new_data_key()
    wrapped = wrap_key(master, data_key, "master-2026")
    assert unwrap_key(master, wrapped, "master-2026") == data_key
    with pytest.raises(SealError, match="master-2026"):
        unwrap_key(os.urandom(32), wrapped, "master-2026")
    with pytest.raises(SealError, match="master-2027"):
        unwrap_key(master, wrapped, "master-2027")
