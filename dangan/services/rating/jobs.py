"""Re-rating a tenant in the background: job ids, enqueueing, and progress for the API.

A job's public id is ``rating:<tenant>:<slot>`` (slot ``nightly-2025-01-31`` or
``criteria-<version>``); arq's id prefixes the deployment's Redis namespace (arq's job
keys are not per queue). One id per tenant and slot, so enqueueing twice is one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from arq.connections import ArqRedis
from arq.jobs import Job

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import NotFound
from dangan.services.rating.scoring import Trigger
from dangan.workers import progress

RATING_JOB = "rate_tenant_customers"


def public_job_id(slug: str, slot: str) -> str:
    return f"rating:{slug}:{slot}"


def nightly_slot(day: date) -> str:
    return f"nightly-{day.isoformat()}"


def criteria_slot(version: int) -> str:
    return f"criteria-{version}"


def arq_job_id(namespace: str, public_id: str) -> str:
    return f"{namespace}:{public_id}"


async def enqueue_rating(
    queue: ArqRedis,
    *,
    queue_name: str,
    namespace: str,
    slug: str,
    slot: str,
    trigger: Trigger,
    criteria_version: int | None = None,
) -> str:
    """Enqueue the re-rating of ``slug`` for ``slot`` (once); returns its public id.
    ``criteria_version``: the job waits until the criteria of that version are committed."""
    public = public_job_id(slug, slot)
    await queue.enqueue_job(
        RATING_JOB,
        slug,
        trigger,
        criteria_version,
        _job_id=arq_job_id(namespace, public),
        _queue_name=queue_name,
    )
    return public


@dataclass(frozen=True)
class JobState:
    id: str
    status: str  # arq's: deferred, queued, in_progress, complete, not_found
    done: int | None
    total: int | None
    stage: str | None


async def rating_job(caller: Caller, queue: ArqRedis, namespace: str, public_id: str) -> JobState:
    """Where a re-rating job of the caller's tenant stands (administrators). Ids of other
    tenants are NOT_FOUND, like ids that never existed."""
    check_allowed(caller, "rating.manage")
    if not public_id.startswith(public_job_id(caller.tenant_slug, "")):
        raise NotFound("no rating job with this id")
    ident = arq_job_id(namespace, public_id)
    status = await Job(ident, queue).status()
    report = await progress.read(queue, namespace, ident)
    if report is None and status.value == "not_found":
        raise NotFound("no rating job with this id")
    return JobState(
        id=public_id,
        status=status.value,
        done=report["done"] if report else None,
        total=report["total"] if report else None,
        stage=report["stage"] if report else None,
    )
