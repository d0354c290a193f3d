"""Rating jobs: re-rate one tenant (nightly, or after its criteria changed), and the
nightly cron that enqueues one such job per tenant and day."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from dangan.audit.actions import ActionLog
from dangan.services.errors import NotFound
from dangan.services.rating import Trigger, current_criteria, rate_all_customers
from dangan.services.rating.jobs import enqueue_rating, nightly_slot
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import TenantRef, run_in_tenant
from dangan.workers.progress import report

BATCH_SIZE = 500
RATING_ACTION = "rating.run"
# The criteria change is committed when the request ends; until then, try again shortly.
UNCOMMITTED_RETRY_SECONDS = 1
JOB_TRIGGERS: dict[str, Trigger] = {
    "nightly": "nightly",
    "criteria": "criteria",
    "manual": "manual",
}


async def rate_tenant_customers(
    ctx: dict[str, Any], slug: str, trigger: str = "nightly", criteria_version: int | None = None
) -> dict[str, Any]:
    """Rate every customer of ``slug``, reporting progress; safe to run twice (the second
    run rewrites the same scores and appends no history)."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r}")
    checked = JOB_TRIGGERS.get(trigger)
    if checked is None:
        raise ValueError(f"not a job trigger: {trigger!r}")
    if criteria_version is not None:
        criteria = await run_in_tenant(tenant, current_criteria)
        if criteria.version < criteria_version:
            raise Retry(defer=UNCOMMITTED_RETRY_SECONDS)
    settings = ctx["settings"]
    job_id = ctx.get("job_id", f"rating:{slug}")

    async def progress(done: int, total: int) -> None:
        await report(
            ctx["redis"], settings.redis_namespace, job_id, done=done, total=total, stage=slug
        )

    details: dict[str, Any] = {"trigger": checked, "criteriaVersion": criteria_version}
    rated = await record_rating_run(
        tenant,
        ActionLog(settings.secret_key, "job"),
        details,
        lambda: rate_all_customers(tenant, checked, BATCH_SIZE, progress),
    )
    return {"tenant": slug, "rated": rated}


async def record_rating_run(
    tenant: TenantRef, log: ActionLog, details: dict[str, Any], run: Callable[[], Awaitable[int]]
) -> int:
    """Await a re-rating of ``tenant`` (many transactions, one per batch) and record
    ``rating.run`` afterwards, or its failure, each in a transaction of its own; the
    actor is ``system`` (a cron, a criteria change, an operator's command)."""
    try:
        rated = await run()
    except Exception as exc:
        await log.record_failure(tenant, RATING_ACTION, exc, details=details)
        raise
    await run_in_tenant(
        tenant, lambda: log.record(RATING_ACTION, details={**details, "rated": rated})
    )
    return rated


async def nightly_ratings(ctx: dict[str, Any]) -> dict[str, str]:
    """Cron: enqueue tonight's re-rating of every tenant, one job per tenant and day
    (a second run of this cron, or a replica's, enqueues nothing new)."""
    settings = ctx["settings"]
    slot = nightly_slot(datetime.now(UTC).date())
    return {
        tenant.slug: await enqueue_rating(
            ctx["redis"],
            queue_name=settings.queue_name,
            namespace=settings.redis_namespace,
            slug=tenant.slug,
            slot=slot,
            trigger="nightly",
        )
        for tenant in await list_tenants()
    }
