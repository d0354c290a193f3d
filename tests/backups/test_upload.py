"""A sealed upload whose producer outruns the sealing thread: the producer waits for room
in the queue (it must not deadlock there), the object arrives whole, and a failing upload
is reported to a waiting producer instead of leaving it waiting."""

from __future__ import annotations

import asyncio
import os

import pytest

from dangan.backups.errors import BackupError
from dangan.backups.sealing import new_data_key, open_sealed
from dangan.backups.store import BackupStore
from dangan.backups.upload import SealedUpload
from dangan.storage import ObjectStore

BATCH = 1 << 20
# Far more batches than the queue holds: the producer's writes never yield until the
# queue is full, so it must wait for room many times over.
BATCHES = 24


async def test_a_producer_faster_than_the_sealing_waits_and_the_object_arrives_whole(
    backups: BackupStore,
) -> None:
    key = f"backups/upload-test/{os.urandom(4).hex()}/data"
    data_key = new_data_key()
    batches = [os.urandom(BATCH) for _ in range(BATCHES)]
    upload = SealedUpload(backups.objects, key, data_key)

    async def produce() -> None:
        for batch in batches:
            await upload.write(batch)

    await asyncio.wait_for(produce(), timeout=60)
    uploaded = await asyncio.wait_for(upload.finish(), timeout=60)

    stored = await backups.objects.get_bytes(key)
    assert uploaded.stored_bytes == len(stored) > BATCH * BATCHES
    assert b"".join(open_sealed(data_key, key, [stored])) == b"".join(batches)
    # Sealed: another key's data does not open with it, and the plaintext is not there.
    assert batches[0][:64] not in stored


async def test_a_failed_upload_reaches_a_producer_that_waits_for_room(
    backups: BackupStore,
) -> None:
    missing = ObjectStore(backups.objects.client, f"no-such-bucket-{os.urandom(4).hex()}")
    upload = SealedUpload(missing, "backups/upload-test/data", new_data_key())

    async def produce() -> None:
        for _ in range(BATCHES * 2):
            await upload.write(os.urandom(BATCH))
        await upload.finish()

    with pytest.raises(BackupError, match="uploading backups/upload-test/data failed"):
        await asyncio.wait_for(produce(), timeout=60)
    await upload.abort()
