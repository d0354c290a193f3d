"""Alarm jobs, on the alarm queue (``<namespace>:alarms``) and its own worker.

``evaluate_alarms`` evaluates one tenant's new audit events (asked for by the API after
requests, see :mod:`dangan.alarms.signal`, and by ``alarm_sweep`` every minute) and
queues a webhook delivery per alert it opened; ``deliver_alert_webhook`` makes one
attempt per try, records it, and asks arq to try again later with a doubling delay
until the last try, which is recorded as failed. An alert about the platform's own work
(``backup_failed``) is delivered twice, as two jobs: to the tenant's own webhook, if it
has one, and to the operators' (target ``platform``).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from arq.worker import Retry

from dangan.alarms.evaluate import evaluate_tenant
from dangan.alarms.signal import EVALUATE, evaluation_job_id
from dangan.alarms.webhook import Target, outcome_of, post, prepare_delivery, record_attempt
from dangan.audit.actions import ActionLog
from dangan.tenants.ddl.alarms import MIGRATIONS
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import TenantRef, run_in_tenant

DELIVER = "deliver_alert_webhook"
ALARMS_VERSION = MIGRATIONS[0].version


def webhook_job_id(namespace: str, tenant_id: int, alert_id: int, target: Target = "tenant") -> str:
    suffix = "" if target == "tenant" else f":{target}"
    return f"{namespace}:alarms:webhook:{tenant_id}:{alert_id}{suffix}"


async def _tenant(slug: str) -> TenantRef | None:
    """The tenant if it exists and has the alarm tables (a tenant still being migrated
    is evaluated once it has them)."""
    tenant = await find_tenant(slug)
    if tenant is None or tenant.status != "active" or tenant.schema_version < ALARMS_VERSION:
        return None
    return tenant


async def evaluate_alarms(ctx: dict[str, Any], slug: str) -> dict[str, Any]:
    """Evaluate the tenant's audit events since the last run; queue webhooks of the
    alerts opened. Safe to run twice and concurrently (the tenant's cursor decides)."""
    tenant = await _tenant(slug)
    if tenant is None:
        return {"tenant": slug, "skipped": True}
    settings = ctx["settings"]
    log = ActionLog(settings.secret_key, "job")
    result = await evaluate_tenant(tenant, ctx["redis"], settings.redis_namespace, log=log)
    for opened in result.opened:
        await ctx["redis"].enqueue_job(
            DELIVER,
            slug,
            opened.id,
            _job_id=webhook_job_id(settings.redis_namespace, tenant.id, opened.id),
            _queue_name=settings.alarm_queue_name,
        )
    return {
        "tenant": slug,
        "events": result.events,
        "lastSeq": result.last_seq,
        "opened": [opened.id for opened in result.opened],
    }


async def deliver_alert_webhook(
    ctx: dict[str, Any], slug: str, alert_id: int, target: Target = "tenant"
) -> dict[str, Any]:
    """One signed POST of the alert to the tenant's webhook (or, ``target`` ``platform``,
    to the operators'), recorded as an attempt."""
    tenant = await _tenant(slug)
    if tenant is None:
        return {"alert": alert_id, "outcome": "no tenant"}
    settings = ctx["settings"]
    number = int(ctx.get("job_try", 1))
    prepare = partial(prepare_delivery, slug, alert_id, settings, target)
    delivery = await run_in_tenant(tenant, prepare)
    if delivery is None:
        return {"alert": alert_id, "target": target, "outcome": "no webhook"}
    attempt = await post(ctx["http"], slug, delivery, settings)
    outcome = outcome_of(attempt, number, settings.alarm_webhook_max_tries)
    await run_in_tenant(tenant, partial(record_attempt, delivery, number, attempt, outcome))
    if outcome == "retrying":
        raise Retry(defer=settings.alarm_webhook_backoff_seconds * 2 ** (number - 1))
    return {"alert": alert_id, "target": target, "outcome": outcome, "attempt": number}


async def alarm_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron, every minute: an evaluation of every tenant, in case a request's signal was
    lost (Redis down for a moment) and for events of jobs and commands."""
    settings = ctx["settings"]
    minute = int(time.time() // 60)
    queued = 0
    for tenant in await list_tenants():
        if tenant.status != "active" or tenant.schema_version < ALARMS_VERSION:
            continue
        job = await ctx["redis"].enqueue_job(
            EVALUATE,
            tenant.slug,
            _job_id=evaluation_job_id(settings.redis_namespace, tenant.id, f"sweep{minute}"),
            _queue_name=settings.alarm_queue_name,
        )
        queued += job is not None
    return {"queued": queued}
