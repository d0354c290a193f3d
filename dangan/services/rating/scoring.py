"""Computing ratings (客户评级): every criterion scored 0–100 in SQL, one statement per batch.

Criteria (weights in ``rating_criterion``, grade floors in ``rating_grade_floor``):

- ``profit`` (利润贡献): profit of the last 12 months, Σ(amount − cost) of purchases (a
  missing cost counts as 0), as a percent rank among the tenant's customers: 100 × the
  share of other customers with less profit. No purchase in the window scores 0.
- ``loyalty`` (忠诚度): half tenure, half frequency. Tenure counts from the earlier of
  the first purchase and the customer's creation, capped at ``TENURE_CAP_YEARS``;
  frequency is distinct orders in the last 12 months, capped at ``ORDERS_CAP``.
- ``potential`` (发展潜力): the staff's assessment 1–5 → 20–100 (unknown: 50), plus up to
  ``PIPELINE_BONUS`` points for open opportunities (LEAD, QUALIFIED, PROPOSAL): the bonus
  grows linearly to its cap at ``PIPELINE_FULL`` of expected amounts; capped at 100.
- ``competition`` (竞争态势): competition risk LOW 100, MEDIUM 60, HIGH 20, unknown 50.

Each criterion's score is rounded to 2 decimals; the rating is Σ weight × score / Σ weights,
graded A/B/C at or above their floors, else D. Merged customers are neither rated nor
ranked. The customer's ``rating_*`` columns and ``rated_at`` are written on every run;
``customer_rating`` gets a row only for a first rating or when the score or grade changed
(its ``criteria`` keep the facts behind each score, see :mod:`.explain`). A rating is a
derived value, so it neither bumps the customer's ``version`` (editors would see spurious
conflicts after every nightly run) nor goes to ``customer_change``: ``customer_rating`` is
its history.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

Trigger = Literal["change", "nightly", "manual", "criteria"]
TRIGGERS: tuple[str, ...] = ("change", "nightly", "manual", "criteria")
CRITERIA = ("profit", "loyalty", "potential", "competition")

# What a rating is computed from: a change to these re-rates the customer at once.
RATING_COLUMNS = frozenset({"potential", "competition_risk"})
RATING_RECORDS = frozenset({"purchase", "opportunity"})

TENURE_CAP_YEARS = 5
ORDERS_CAP = 12
PIPELINE_BONUS = 20
PIPELINE_FULL = 1_000_000
OPEN_STAGES = ("LEAD", "QUALIFIED", "PROPOSAL")

# $1: the customers to rate (uuid[]); $2: the trigger. Rows are locked first, so two
# concurrent runs compare against each other's result, not a stale one.
_RATE_SQL = f"""
WITH weights AS (
    SELECT coalesce(sum(weight) FILTER (WHERE code = 'profit'), 0) AS profit,
           coalesce(sum(weight) FILTER (WHERE code = 'loyalty'), 0) AS loyalty,
           coalesce(sum(weight) FILTER (WHERE code = 'potential'), 0) AS potential,
           coalesce(sum(weight) FILTER (WHERE code = 'competition'), 0) AS competition,
           coalesce(sum(weight), 0) AS total
      FROM rating_criterion
),
floors AS (
    SELECT max(floor) FILTER (WHERE grade = 'A') AS a,
           max(floor) FILTER (WHERE grade = 'B') AS b,
           max(floor) FILTER (WHERE grade = 'C') AS c
      FROM rating_grade_floor
),
recent AS (
    SELECT p.customer_id, sum(p.amount - coalesce(p.cost, 0)) AS profit,
           count(DISTINCT p.order_no) AS orders
      FROM purchase p JOIN customer c ON c.id = p.customer_id AND c.status <> 'MERGED'
     WHERE p.purchased_on > current_date - interval '12 months'
       AND p.purchased_on <= current_date
     GROUP BY p.customer_id
),
population AS (
    SELECT (SELECT count(*) FROM customer WHERE status <> 'MERGED') AS n,
           (SELECT count(*) FROM recent) AS buyers,
           (SELECT count(*) FROM recent WHERE profit < 0) AS losses
),
-- How many buyers made strictly less (ties share a rank, as in percent_rank).
buyers AS (
    SELECT customer_id, profit, orders, rank() OVER (ORDER BY profit) - 1 AS below
      FROM recent
),
batch AS (
    SELECT c.id, c.created_at, c.potential, c.competition_risk,
           c.rating_score AS old_score, c.rating_grade AS old_grade
      FROM customer c
     WHERE c.id = ANY($1::uuid[]) AND c.status <> 'MERGED'
       FOR UPDATE OF c
),
-- percent_rank of coalesce(profit, 0) among every live customer, for the batch only:
-- (customers with less) / (n - 1). Customers without purchases count as 0, so they are
-- below a positive profit and above a loss; only the buyers need sorting.
ranked AS (
    SELECT b.id, r.profit, coalesce(r.orders, 0) AS orders,
           CASE WHEN pop.n <= 1 THEN 0 ELSE (
               CASE WHEN r.customer_id IS NULL THEN pop.losses
                    ELSE r.below + CASE WHEN r.profit > 0 THEN pop.n - pop.buyers ELSE 0 END
               END
           )::float8 / (pop.n - 1) END AS rank
      FROM batch b CROSS JOIN population pop LEFT JOIN buyers r ON r.customer_id = b.id
),
facts AS (
    SELECT b.*, k.profit, k.orders, k.rank,
           least(first.purchased_on, b.created_at::date) AS since,
           greatest(current_date - least(first.purchased_on, b.created_at::date), 0) AS days,
           pipeline.open_count, coalesce(pipeline.open_amount, 0) AS open_amount
      FROM batch b
      JOIN ranked k ON k.id = b.id
      LEFT JOIN LATERAL (
          SELECT min(p.purchased_on) AS purchased_on FROM purchase p WHERE p.customer_id = b.id
      ) first ON TRUE
      LEFT JOIN LATERAL (
          SELECT count(*) AS open_count, sum(o.expected_amount) AS open_amount
            FROM opportunity o
           WHERE o.customer_id = b.id
             AND o.stage IN ({", ".join(f"'{stage}'" for stage in OPEN_STAGES)})
      ) pipeline ON TRUE
),
criteria AS (
    SELECT f.*,
           round(CASE WHEN f.profit IS NULL THEN 0 ELSE f.rank * 100 END::numeric, 2)
               AS s_profit,
           round((least(f.days / ({TENURE_CAP_YEARS} * 365.25), 1) * 100
                  + least(f.orders / {ORDERS_CAP}.0, 1) * 100) / 2, 2) AS s_loyalty,
           round(least(coalesce(f.potential * 20, 50)
                       + least(f.open_amount / {PIPELINE_FULL}.0, 1) * {PIPELINE_BONUS}, 100),
                 2) AS s_potential,
           CASE f.competition_risk WHEN 'LOW' THEN 100 WHEN 'MEDIUM' THEN 60
                WHEN 'HIGH' THEN 20 ELSE 50 END::numeric AS s_competition
      FROM facts f
),
scored AS (
    SELECT k.*, w.profit AS w_profit, w.loyalty AS w_loyalty, w.potential AS w_potential,
           w.competition AS w_competition,
           round(coalesce((w.profit * k.s_profit + w.loyalty * k.s_loyalty
                           + w.potential * k.s_potential + w.competition * k.s_competition)
                          / nullif(w.total, 0), 0), 2) AS score
      FROM criteria k CROSS JOIN weights w
),
graded AS (
    SELECT s.*,
           CASE WHEN s.score >= f.a THEN 'A' WHEN s.score >= f.b THEN 'B'
                WHEN s.score >= f.c THEN 'C' ELSE 'D' END AS grade
      FROM scored s CROSS JOIN floors f
),
updated AS (
    UPDATE customer c SET rating_score = g.score, rating_grade = g.grade, rated_at = now()
      FROM graded g WHERE c.id = g.id
    RETURNING c.id
),
appended AS (
    INSERT INTO customer_rating (customer_id, score, grade, criteria, trigger, computed_at)
    SELECT g.id, g.score, g.grade, jsonb_build_object(
               'profit', jsonb_build_object('weight', g.w_profit, 'score', g.s_profit,
                   'facts', jsonb_build_object('profit', g.profit::text,
                       'bought', g.profit IS NOT NULL, 'percentile', floor(g.s_profit)::int)),
               'loyalty', jsonb_build_object('weight', g.w_loyalty, 'score', g.s_loyalty,
                   'facts', jsonb_build_object(
                       'orders', g.orders, 'years', round(g.days / 365.25, 1),
                       'since', g.since)),
               'potential', jsonb_build_object('weight', g.w_potential, 'score', g.s_potential,
                   'facts', jsonb_build_object(
                       'assessment', g.potential, 'open_opportunities', g.open_count,
                       'open_amount', g.open_amount::text)),
               'competition', jsonb_build_object('weight', g.w_competition,
                   'score', g.s_competition,
                   'facts', jsonb_build_object('risk', g.competition_risk))),
           $2, now()
      FROM graded g
     WHERE g.old_score IS DISTINCT FROM g.score OR g.old_grade IS DISTINCT FROM g.grade
        OR NOT EXISTS (SELECT 1 FROM customer_rating r WHERE r.customer_id = g.id)
    RETURNING customer_id
)
SELECT (SELECT count(*) FROM updated) AS rated, (SELECT count(*) FROM appended) AS appended
"""


def _check_trigger(trigger: str) -> None:
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown rating trigger {trigger!r}")


async def rate_customers(customer_ids: Sequence[uuid.UUID | str], trigger: Trigger) -> int:
    """Rate these customers now, inside the current tenant transaction (one statement);
    returns how many were rated (unknown and merged ones are skipped)."""
    _check_trigger(trigger)
    ids = [uuid.UUID(str(customer_id)) for customer_id in customer_ids]
    if not ids:
        return 0
    conn = raw_connection()
    # Lock first, in a statement of its own: the rating statement then starts (under READ
    # COMMITTED) with a snapshot that includes whatever the lock waited for — say a
    # purchase added and committed meanwhile — instead of scoring from older data.
    await conn.execute(
        "SELECT 1 FROM customer WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids
    )
    row = await conn.fetchrow(_RATE_SQL, ids, trigger)
    return int(row["rated"])


Progress = Callable[[int, int], Awaitable[None]]


async def rerate_if_affected(
    customer_ids: Sequence[uuid.UUID | str], *, columns: Sequence[str] = (), record: str = ""
) -> None:
    """Re-rate customers after a change to what their rating is computed from (its
    columns, or records of a type in ``RATING_RECORDS``), in the change's transaction."""
    if record in RATING_RECORDS or RATING_COLUMNS.intersection(columns):
        await rate_customers(customer_ids, "change")


async def rate_all_customers(
    tenant: TenantRef,
    trigger: Trigger,
    batch_size: int = 500,
    on_progress: Progress | None = None,
) -> int:
    """Rate every customer of ``tenant``, one transaction per batch of ``batch_size`` (in
    id order), calling ``on_progress(done, total)`` after each; returns how many were
    rated. Safe to run twice: the second run appends no history unless something changed.
    """
    _check_trigger(trigger)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")

    async def count() -> int:
        total: int = await raw_connection().fetchval(
            "SELECT count(*) FROM customer WHERE status <> 'MERGED'"
        )
        return total

    total = await run_in_tenant(tenant, count)
    done = 0
    after = uuid.UUID(int=0)
    while True:

        async def batch(after: uuid.UUID = after) -> tuple[int, uuid.UUID | None]:
            ids = [
                row["id"]
                for row in await raw_connection().fetch(
                    "SELECT id FROM customer WHERE id > $1 AND status <> 'MERGED'"
                    " ORDER BY id LIMIT $2",
                    after,
                    batch_size,
                )
            ]
            if not ids:
                return 0, None
            return await rate_customers(ids, trigger), ids[-1]

        rated, last = await run_in_tenant(tenant, batch)
        if last is None:
            break
        done += rated
        after = last
        if on_progress is not None:
            # Customers created during the run may push ``done`` past the first count.
            await on_progress(done, max(total, done))
    if on_progress is not None and done == 0:
        await on_progress(0, 0)
    return done
