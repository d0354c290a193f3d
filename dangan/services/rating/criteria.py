"""The tenant's rating criteria (评级标准): weights per criterion and the grade floors.

Every change stamps all criteria with one ``updated_at``; its microseconds since the epoch
are the criteria's *version*, which names the re-rating job the change starts (one job
per tenant and version) and lets that job wait until the change is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.services.rating.scoring import CRITERIA
from dangan.tenants.scope import raw_connection

GRADES_WITH_FLOORS = ("A", "B", "C")
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Criteria:
    weights: dict[str, Decimal]  # in CRITERIA order
    floors: dict[str, Decimal]  # A, B, C
    version: int
    changed: bool  # False while the tenant runs the shipped defaults


async def current_criteria() -> Criteria:
    """The criteria in force (inside the tenant transaction)."""
    conn = raw_connection()
    rows = await conn.fetch("SELECT code, weight FROM rating_criterion")
    stamp = await conn.fetchrow(
        "SELECT (extract(epoch FROM max(updated_at)) * 1000000)::bigint AS version,"
        " coalesce(bool_or(updated_by IS NOT NULL), FALSE) AS changed FROM rating_criterion"
    )
    floors = await conn.fetch("SELECT grade, floor FROM rating_grade_floor")
    weights = {row["code"]: row["weight"] for row in rows}
    return Criteria(
        weights={code: weights.get(code, Decimal(0)) for code in CRITERIA},
        floors={row["grade"]: row["floor"] for row in sorted(floors, key=lambda r: r["grade"])},
        version=int(stamp["version"] or 0),
        changed=bool(stamp["changed"]),
    )


async def rating_criteria(caller: Caller) -> Criteria:
    """The criteria, for anyone who may read customers."""
    check_allowed(caller, "customer.read")
    return await current_criteria()


def _amount(value: object, field: str) -> Decimal:
    """A number from 0 to 100 with at most two decimals."""
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise BadUserInput(f"{field} must be a number", field=field) from exc
    if not number.is_finite() or not 0 <= number <= _HUNDRED:
        raise BadUserInput(f"{field} must be between 0 and 100", field=field)
    if number != number.quantize(Decimal("0.01")):
        raise BadUserInput(f"{field} may have at most two decimals", field=field)
    return number


def check_criteria(
    weights: Sequence[tuple[str, object]], floors: Mapping[str, object]
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Validated weights (each criterion once, 0–100, summing to 100) and floors
    (A > B > C, each 0–100); BadUserInput names the offending field."""
    checked: dict[str, Decimal] = {}
    for index, (code, weight) in enumerate(weights):
        if code not in CRITERIA:
            raise BadUserInput(f"unknown criterion {code!r}", field=f"weights[{index}].criterion")
        if code in checked:
            raise BadUserInput(f"{code} is given twice", field=f"weights[{index}].criterion")
        checked[code] = _amount(weight, f"weights[{index}].weight")
    missing = [code for code in CRITERIA if code not in checked]
    if missing:
        raise BadUserInput(f"give a weight for {', '.join(missing)}", field="weights")
    total = sum(checked.values(), Decimal(0))
    if total != _HUNDRED:
        raise BadUserInput(f"weights must sum to 100 (they sum to {total})", field="weights")
    checked_floors = {
        grade: _amount(floors.get(grade.lower()), f"floors.{grade.lower()}")
        for grade in GRADES_WITH_FLOORS
    }
    if not checked_floors["A"] > checked_floors["B"]:
        raise BadUserInput("floor A must be above floor B", field="floors.a")
    if not checked_floors["B"] > checked_floors["C"]:
        raise BadUserInput("floor B must be above floor C", field="floors.b")
    return {code: checked[code] for code in CRITERIA}, checked_floors


async def set_rating_criteria(
    caller: Caller, weights: Sequence[tuple[str, object]], floors: Mapping[str, object]
) -> Criteria:
    """Replace the weights and floors (administrators); returns the new criteria, whose
    version names the re-rating job to start (see :mod:`dangan.services.rating.jobs`)."""
    check_allowed(caller, "rating.manage")
    checked_weights, checked_floors = check_criteria(weights, floors)
    conn = raw_connection()
    async with conn.savepoint():
        # clock_timestamp: two changes in one request still get two versions.
        await conn.execute(
            "UPDATE rating_criterion r SET weight = v.weight, updated_at = clock_timestamp(),"
            " updated_by = $3 FROM unnest($1::text[], $2::numeric[]) AS v(code, weight)"
            " WHERE r.code = v.code",
            list(checked_weights),
            list(checked_weights.values()),
            caller.id,
        )
        await conn.execute(
            "UPDATE rating_grade_floor f SET floor = v.floor"
            " FROM unnest($1::text[], $2::numeric[]) AS v(grade, floor) WHERE f.grade = v.grade",
            list(checked_floors),
            list(checked_floors.values()),
        )
    return await current_criteria()
