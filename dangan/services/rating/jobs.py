"""Re-rating a tenant in the background: job ids, enqueueing, and progress for the API.

A job's public id is ``rating:<tenant>:<slot>`` (slot ``nightly-2025-01-31`` or
``criteria-<version>``); arq's id prefixes the deployment's Redis namespace (arq's job
keys are not per queue). One id per tenant and slot, so enqueueing twice is one job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from arq.connections import ArqRedis
from arq.jobs import Job

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import NotFound
from dangan.services.rating.criteria import Criteria, set_rating_criteria
from dangan.services.rating.scoring import Trigger
from dangan.tenants.scope import raw_connection
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


def criteria_job_id(slug: str, criteria: Criteria) -> str | None:
    """The job that re-rates the tenant under these criteria (None: the shipped defaults,
    which no job started)."""
    return public_job_id(slug, criteria_slot(criteria.version)) if criteria.changed else None


async def change_rating_criteria(
    caller: Caller,
    weights: Sequence[tuple[str, object]],
    floors: Mapping[str, object],
    *,
    queue: ArqRedis,
    queue_name: str,
    namespace: str,
) -> tuple[Criteria, str]:
    """New criteria and the job re-rating the tenant under them, or neither (if the job
    can't be enqueued, the change is undone). Returns the criteria and the job's id."""
    async with raw_connection().savepoint():
        criteria = await set_rating_criteria(caller, weights, floors)
        job_id = await enqueue_rating(
            queue,
            queue_name=queue_name,
            namespace=namespace,
            slug=caller.tenant_slug,
            slot=criteria_slot(criteria.version),
            trigger="criteria",
            criteria_version=criteria.version,
        )
    return criteria, job_id


@dataclass(frozen=True)
class JobState:
    id: str
    status: str  # arq's: deferred, queued, in_progress, complete, not_found
    done: int | None
    total: int | None
    stage: str | None


async def rating_job(
    caller: Caller, queue: ArqRedis, *, queue_name: str, namespace: str, public_id: str
) -> JobState:
    """Where a re-rating job of the caller's tenant stands (administrators). Ids of other
    tenants are NOT_FOUND, like ids that never existed."""
    check_allowed(caller, "rating.manage")
    if not public_id.startswith(public_job_id(caller.tenant_slug, "")):
        raise NotFound("no rating job with this id")
    ident = arq_job_id(namespace, public_id)
    status = await Job(ident, queue, _queue_name=queue_name).status()
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
