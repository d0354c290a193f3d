"""The request path's only part in alarms: asking, cheaply, for the tenant's evaluation.

Time is cut into slots of ``alarm_delay_seconds``. The first request of a tenant in a
slot (per API process) enqueues the evaluation job for the end of that slot, under a
job id of the tenant and slot, so every process and every request of the slot share one
job; the other requests of the slot do nothing at all. The job starts after the slot
ends, so it finds every event committed by the requests that asked for it. The
endpoint sends this after the response (a background task), so a caller never waits
for Redis; if Redis is down the request is not affected and the cron sweep catches up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from arq.connections import ArqRedis

from dangan.settings import Settings
from dangan.tenants.scope import TenantRef

log = structlog.get_logger("dangan.alarms")
EVALUATE = "evaluate_alarms"


def evaluation_job_id(namespace: str, tenant_id: int, slot: int | str) -> str:
    return f"{namespace}:alarms:evaluate:{tenant_id}:{slot}"


class AlarmSignal:
    def __init__(self, queue: ArqRedis, settings: Settings) -> None:
        self._queue = queue
        self._queue_name = settings.alarm_queue_name
        self._namespace = settings.redis_namespace
        self._delay = settings.alarm_delay_seconds
        self._signalled: dict[int, int] = {}  # tenant id → last slot asked for

    def due(self, tenant: TenantRef) -> int | None:
        """The slot to ask for, or None when this process already asked for it."""
        slot = int(time.time() // self._delay)
        if self._signalled.get(tenant.id) == slot:
            return None
        self._signalled[tenant.id] = slot
        return slot

    async def send(self, tenant: TenantRef, slot: int) -> None:
        try:
            await self._queue.enqueue_job(
                EVALUATE,
                tenant.slug,
                _job_id=evaluation_job_id(self._namespace, tenant.id, slot),
                _queue_name=self._queue_name,
                _defer_until=datetime.fromtimestamp((slot + 1) * self._delay, UTC),
            )
        except Exception:  # the cron sweep catches up; the request already succeeded
            log.warning("could not ask for an alarm evaluation", tenant=tenant.slug)
