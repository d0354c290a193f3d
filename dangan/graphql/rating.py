"""Customer rating (客户评级) in the API: ``Customer.rating``, ``ratingHistory``,
``ratingCriteria``, ``setRatingCriteria``, ``recomputeRating`` and ``ratingJob``.

A rating the caller may not see (see dangan.services.rating.views: shown where the
customer's rating fields are shown in full) is null with its path in
``extensions.redacted``, like a hidden Customer field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from dangan.services import rating
from dangan.services.callers import Caller
from dangan.services.rating import jobs


@strawberry.enum(description="利润贡献 / 忠诚度 / 发展潜力 / 竞争态势")
class RatingCriterion(Enum):
    PROFIT = "profit"
    LOYALTY = "loyalty"
    POTENTIAL = "potential"
    COMPETITION = "competition"


@strawberry.enum(description="A (best) to D; A, B and C start at the tenant's floors")
class RatingGrade(Enum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


@strawberry.type(description="One criterion of a rating: its score 0–100 and why")
class RatingCriterionScore:
    criterion: RatingCriterion
    weight: float
    score: float
    contribution: float = strawberry.field(description="Points it adds: weight × score / 100")
    explanation: str


@strawberry.type(description="客户评级: a customer's score 0–100, grade, and its reasons")
class CustomerRating:
    score: float
    grade: RatingGrade
    computed_at: datetime
    trigger: str = strawberry.field(description="change, nightly, manual or criteria")
    criteria: list[RatingCriterionScore]

    @classmethod
    def from_view(cls, view: rating.RatingView) -> CustomerRating:
        return cls(
            score=float(view.score),
            grade=RatingGrade(view.grade),
            computed_at=view.computed_at,
            trigger=view.trigger,
            criteria=[
                RatingCriterionScore(
                    criterion=RatingCriterion(c.criterion),
                    weight=float(c.weight),
                    score=float(c.score),
                    contribution=float(c.contribution),
                    explanation=c.explanation,
                )
                for c in view.criteria
            ],
        )


@strawberry.type
class RatingWeight:
    criterion: RatingCriterion
    weight: float


@strawberry.type(description="Lowest scores of grades A, B and C (below C: D)")
class GradeFloors:
    a: float
    b: float
    c: float


@strawberry.type(description="评级标准: the weights (summing to 100) and grade floors")
class RatingCriteria:
    weights: list[RatingWeight]
    floors: GradeFloors
    job_id: str | None = strawberry.field(
        description="The job re-rating every customer under these criteria (see ratingJob)"
    )

    @classmethod
    def from_criteria(cls, criteria: rating.Criteria, slug: str) -> RatingCriteria:
        return cls(
            weights=[
                RatingWeight(criterion=RatingCriterion(code), weight=float(weight))
                for code, weight in criteria.weights.items()
            ],
            floors=GradeFloors(
                a=float(criteria.floors["A"]),
                b=float(criteria.floors["B"]),
                c=float(criteria.floors["C"]),
            ),
            job_id=jobs.criteria_job_id(slug, criteria),
        )


@strawberry.input
class RatingWeightInput:
    criterion: RatingCriterion
    weight: float


@strawberry.input
class GradeFloorsInput:
    a: float
    b: float
    c: float


@strawberry.type(description="Where a re-rating job stands")
class RatingJob:
    id: str
    status: str = strawberry.field(
        description="deferred, queued, in_progress, complete or not_found"
    )
    done: int | None
    total: int | None
    stage: str | None


def rating_loader() -> DataLoader[Any, Any]:
    """Latest ratings of a page of customers, one query (keys: (caller, customer id))."""

    async def load(keys: list[tuple[Caller, str]]) -> list[Any]:
        ids = [uuid.UUID(customer_id) for _, customer_id in keys]
        found = await rating.latest_ratings(keys[0][0], ids)
        return [found[customer_id] for customer_id in ids]

    return DataLoader(load_fn=load)


def _hidden(info: Info) -> None:
    info.context.redacted.append(".".join(str(key) for key in info.path.as_list()))


def _shaped(info: Info, seen: Any) -> CustomerRating | None:
    if seen == rating.HIDDEN:
        _hidden(info)
        return None
    return CustomerRating.from_view(seen) if seen is not None else None


async def customer_rating(root: Any, info: Info) -> CustomerRating | None:
    """The latest rating; null if never rated, or hidden from you (extensions.redacted)."""
    caller = info.context.require_caller()
    return _shaped(info, await info.context.ratings.load((caller, root.id)))


async def rating_history(
    info: Info, customer_id: strawberry.ID, first: int = 20
) -> list[CustomerRating] | None:
    """A customer's ratings, newest first (a new one only when the score or grade moved)."""
    views = await rating.rating_history(info.context.require_caller(), customer_id, first)
    if views is None:
        _hidden(info)
        return None
    return [CustomerRating.from_view(view) for view in views]


async def rating_criteria(info: Info) -> RatingCriteria:
    caller = info.context.require_caller()
    return RatingCriteria.from_criteria(await rating.rating_criteria(caller), caller.tenant_slug)


async def set_rating_criteria(
    info: Info, weights: list[RatingWeightInput], floors: GradeFloorsInput
) -> RatingCriteria:
    """Change the weights and floors (administrators) and re-rate every customer in the
    background (follow it with ratingJob(id: jobId))."""
    caller = info.context.require_caller()
    settings = info.context.settings
    criteria, _ = await jobs.change_rating_criteria(
        caller,
        [(w.criterion.value, w.weight) for w in weights],
        {"a": floors.a, "b": floors.b, "c": floors.c},
        queue=info.context.jobs,
        queue_name=settings.queue_name,
        namespace=settings.redis_namespace,
    )
    return RatingCriteria.from_criteria(criteria, caller.tenant_slug)


async def recompute_rating(info: Info, customer_id: strawberry.ID) -> CustomerRating | None:
    """Rate a customer you may edit now; returns the rating as you may see it."""
    seen = await rating.recompute_rating(info.context.require_caller(), customer_id)
    return _shaped(info, seen)


async def rating_job(info: Info, id: strawberry.ID) -> RatingJob:
    """Progress of a re-rating job of your tenant (administrators)."""
    settings = info.context.settings
    state = await jobs.rating_job(
        info.context.require_caller(),
        info.context.jobs,
        queue_name=settings.queue_name,
        namespace=settings.redis_namespace,
        public_id=str(id),
    )
    return RatingJob(
        id=state.id, status=state.status, done=state.done, total=state.total, stage=state.stage
    )
