"""Ratings as a caller may see them: the latest per customer, the history, a recompute.

A rating is business information about its customer, read through the customer's own
rating columns: it is shown where the caller sees ``rating_grade``, ``rating_score`` and
``rated_at`` in full on that customer (by default: the business class in full), and
hidden otherwise — masked included, because a grade has no masked form (its only
"masked" form, the letter, is the whole grade; CUSTOMER_FIELDS gives it none, so masked
means hidden there too). Facts behind the explanations are filtered per column class
(see :mod:`.explain`). All of it is decided in SQL, per row, once per query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from dangan.authz.access import CustomerAccess
from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.authz.store import customer_access
from dangan.models.records import RECORD_TYPES
from dangan.services.callers import Caller
from dangan.services.customers.reads import parse_customer_id
from dangan.services.errors import BadUserInput, Forbidden, NotFound
from dangan.services.rating.explain import GUARDED_FACTS, explanation
from dangan.services.rating.scoring import CRITERIA, rate_customers
from dangan.tenants.scope import raw_connection

RATING_COLUMNS = ("rating_grade", "rating_score", "rated_at")
HIDDEN: Literal["hidden"] = "hidden"
MAX_HISTORY = 200


@dataclass(frozen=True)
class CriterionView:
    criterion: str
    weight: Decimal
    score: Decimal
    contribution: Decimal  # weight × score / Σ weights: the points it adds to the score
    explanation: str


@dataclass(frozen=True)
class RatingView:
    score: Decimal
    grade: str
    computed_at: datetime
    trigger: str
    criteria: list[CriterionView]


Seen = RatingView | None | Literal["hidden"]


def _shown(access: CustomerAccess) -> Predicate:
    fields = [access.field(column) for column in RATING_COLUMNS]
    return all_of([access.rows, *[f.full for f in fields if f is not None]])


def _criteria_sql(access: CustomerAccess, sql: Numbered) -> tuple[str, str]:
    """Inner flag columns, and the expression of the criteria with unseen facts removed."""
    flags: list[str] = []
    expression = "r.criteria"
    for index, (path, table, column) in enumerate(GUARDED_FACTS):
        spec = RECORD_TYPES[table].fields[column]
        full = sql.add(access.class_field(column, spec).full)
        flags.append(f"COALESCE({full}, FALSE) AS fact{index}")
        # Removing the empty path is a no-op, so each fact is removed or kept in turn.
        expression += f" #- (CASE WHEN x.fact{index} THEN '{{}}' ELSE '{path}' END)::text[]"
    return ", ".join(flags), expression


async def _read(access: CustomerAccess, ids: list[uuid.UUID], limit: int) -> list[Any]:
    """Per customer: whether the rating is shown, and up to ``limit`` ratings, newest first."""
    sql = Numbered()
    shown = sql.add(_shown(access))
    flags, criteria = _criteria_sql(access, sql)
    return await raw_connection().fetch(
        "SELECT x.id, x.shown, x.rated_at, r.score, r.grade, r.trigger, r.computed_at,"
        f" {criteria} AS criteria"
        f" FROM (SELECT c.id, c.rated_at, COALESCE({shown}, FALSE) AS shown, {flags}"
        f" FROM customer c WHERE c.id = ANY({sql.value(ids)}::uuid[])) x"
        " LEFT JOIN LATERAL (SELECT score, grade, trigger, computed_at, criteria"
        "   FROM customer_rating r WHERE r.customer_id = x.id"
        f"  ORDER BY computed_at DESC, id DESC LIMIT {int(limit)}) r ON x.shown"
        " ORDER BY x.id, r.computed_at DESC",
        *sql.params,
    )


def _view(row: Any, computed_at: datetime) -> RatingView:
    stored = orjson.loads(row["criteria"])
    total = sum((Decimal(str(stored[c]["weight"])) for c in CRITERIA if c in stored), Decimal(0))
    criteria = []
    for code in CRITERIA:
        entry = stored.get(code)
        if entry is None:
            continue
        weight, score = Decimal(str(entry["weight"])), Decimal(str(entry["score"]))
        contribution = (weight * score / total).quantize(Decimal("0.01")) if total else Decimal(0)
        criteria.append(
            CriterionView(code, weight, score, contribution, explanation(code, entry["facts"]))
        )
    return RatingView(row["score"], row["grade"], computed_at, row["trigger"], criteria)


async def latest_ratings(
    caller: Caller, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Seen]:
    """The latest rating of each customer (one query): a view, None when never rated,
    or HIDDEN where the caller may not see it (missing ids are HIDDEN too)."""
    access = await customer_access(caller)
    found: dict[uuid.UUID, Seen] = dict.fromkeys(customer_ids, HIDDEN)
    for row in await _read(access, list(customer_ids), 1):
        if not row["shown"]:
            continue
        # computedAt of the latest: when it was last computed (the breakdown is the one
        # recorded when the score or grade last changed).
        found[row["id"]] = _view(row, row["rated_at"]) if row["score"] is not None else None
    return found


async def rating_history(caller: Caller, customer_id: str, first: int) -> list[RatingView] | None:
    """Up to ``first`` ratings of a customer the caller sees, newest first; None when
    the rating is hidden from them; NOT_FOUND for a customer they don't see."""
    check_allowed(caller, "customer.read")
    if not 1 <= first <= MAX_HISTORY:
        raise BadUserInput(f"first must be between 1 and {MAX_HISTORY}", field="first")
    uid = parse_customer_id(customer_id)
    access = await customer_access(caller)
    sql = Numbered()
    visible = await raw_connection().fetchval(
        f"SELECT {sql.add(access.rows)} FROM customer c WHERE c.id = {sql.value(uid)}",
        *sql.params,
    )
    if not visible:
        raise NotFound("no customer with this id")
    rows = await _read(access, [uid], first)
    if not rows or not rows[0]["shown"]:
        return None
    return [_view(row, row["computed_at"]) for row in rows if row["score"] is not None]


async def recompute_rating(caller: Caller, customer_id: str) -> Seen:
    """Rate one customer now (trigger ``manual``) for someone who may edit it; returns
    the new rating as the caller may see it."""
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    access = await customer_access(caller)
    sql = Numbered()
    rights = await raw_connection().fetchrow(
        f"SELECT COALESCE({sql.add(access.rows)}, FALSE) AS visible,"
        f" COALESCE({sql.add(access.can('edit'))}, FALSE) AS editable, c.status"
        f" FROM customer c WHERE c.id = {sql.value(uid)}",
        *sql.params,
    )
    if rights is None or not rights["visible"]:
        raise NotFound("no customer with this id")
    if not rights["editable"]:
        raise Forbidden("your access does not allow rating this customer")
    if rights["status"] == "MERGED":
        raise BadUserInput("a merged customer is not rated", field="customerId")
    async with raw_connection().savepoint():
        await rate_customers([uid], "manual")
    return (await latest_ratings(caller, [uid]))[uid]
