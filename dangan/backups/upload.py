"""A sealed object streamed to S3 while it is being produced.

The event loop hands plaintext to :meth:`SealedUpload.write`; a worker thread compresses,
encrypts (:func:`dangan.backups.sealing.seal`) and uploads it in parts of
``PART_BYTES`` (minio's multipart upload, for a length not known in advance), so reading
PostgreSQL, sealing and sending overlap. zstd and AES-GCM release the GIL. Memory stays
at about the queue's few megabytes plus one part.

If anything fails, the upload is aborted (minio aborts the multipart upload it began) and
no object appears; a process killed mid-way leaves only an incomplete multipart upload,
invisible to readers and removed by the bucket's lifecycle rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from dangan.backups.errors import BackupError
from dangan.backups.sealing import seal
from dangan.storage import ObjectStore

PART_BYTES = 16 * 1024 * 1024
_BATCH_BYTES = 1 << 20  # plaintext handed to the thread at once
_QUEUE_BATCHES = 8
_DONE = object()


@dataclass(frozen=True)
class Uploaded:
    key: str
    version_id: str | None
    stored_bytes: int


class _Abandoned(Exception):
    """The producer gave up; the thread stops reading and minio aborts the upload."""


class _SealedStream:
    """A file-like object over the sealed bytes of the queue's plaintext (read by minio)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.pending = b""
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        out = [self.pending]
        held = len(self.pending)
        while size < 0 or held < size:
            piece = next(self.pieces, None)
            if piece is None:
                break
            out.append(piece)
            held += len(piece)
        data = b"".join(out)
        if size >= 0:
            data, self.pending = data[:size], data[size:]
        else:
            self.pending = b""
        self.size += len(data)
        return data


class SealedUpload:
    """Write plaintext, then :meth:`finish` (or :meth:`abort`)."""

    def __init__(self, objects: ObjectStore, key: str, data_key: bytes, **extra: Any) -> None:
        self.objects = objects
        self.key = key
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self._batch: list[bytes] = []
        self._held = 0
        self._stream = _SealedStream(seal(data_key, key, self._plaintext()))
        self._task = asyncio.ensure_future(asyncio.to_thread(self._upload, extra))

    def _plaintext(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not _DONE:
            if isinstance(item, _Abandoned):
                raise item
            assert isinstance(item, bytes)
            yield item

    def _upload(self, extra: dict[str, Any]) -> Any:
        client = self.objects.client
        return client.put_object(
            self.objects.bucket,
            self.key,
            cast(BinaryIO, self._stream),  # minio only calls read()
            -1,
            part_size=PART_BYTES,
            content_type="application/octet-stream",
            **extra,
        )

    async def write(self, data: bytes) -> None:
        self._batch.append(data)
        self._held += len(data)
        if self._held >= _BATCH_BYTES:
            await self._hand_over()

    async def _hand_over(self) -> None:
        if self._batch:
            batch = b"".join(self._batch)
            self._batch, self._held = [], 0
            await self._put(batch)

    async def _put(self, item: object) -> None:
        while True:
            if self._task.done():
                await self._failed()
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                if await asyncio.to_thread(self._put_within, item, 0.5):
                    return

    def _put_within(self, item: object, seconds: float) -> bool:
        """Put ``item``, waiting (in a thread) at most ``seconds`` for room; False if none
        came (the caller then looks at the upload again: it may have failed)."""
        try:
            self._queue.put(item, timeout=seconds)
        except queue.Full:
            return False
        return True

    async def _failed(self) -> None:
        try:
            await self._task
        except Exception as exc:
            raise BackupError(f"uploading {self.key} failed: {exc}") from exc
        raise BackupError(f"uploading {self.key} stopped before its end")

    async def finish(self) -> Uploaded:
        await self._hand_over()
        await self._put(_DONE)
        try:
            result = await self._task
        except Exception as exc:
            raise BackupError(f"uploading {self.key} failed: {exc}") from exc
        return Uploaded(self.key, result.version_id, self._stream.size)

    async def abort(self) -> None:
        """Stop the upload (nothing is written); never raises."""
        self._batch, self._held = [], 0
        while not self._task.done():
            try:
                self._queue.put_nowait(_Abandoned())
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # drop plaintext nobody will read
        # The abort's own _Abandoned comes back, or what made the caller abort.
        with contextlib.suppress(Exception):
            await self._task
