"""Progress of long jobs, kept in Redis so the CLI and the API can both show it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from redis.asyncio import Redis

TTL_SECONDS = 7 * 24 * 3600


def progress_key(namespace: str, job_id: str) -> str:
    return f"{namespace}:progress:{job_id}"


async def report(
    redis: Redis,
    namespace: str,
    job_id: str,
    *,
    done: int,
    total: int,
    stage: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Replace the job's progress; ``extra``: more facts for its readers (a backup's rows
    and bytes, its state, when it is tried again)."""
    payload = {**(extra or {}), "done": done, "total": total, "stage": stage, "at": time.time()}
    await redis.set(progress_key(namespace, job_id), orjson.dumps(payload), ex=TTL_SECONDS)


async def read(redis: Redis, namespace: str, job_id: str) -> dict[str, Any] | None:
    raw = await redis.get(progress_key(namespace, job_id))
    return orjson.loads(raw) if raw else None
