"""Rating scores for hand-made purchase histories (tests/support/rating.py): ranking,
caps, unknowns, grade floors, criteria changes, and history only on change.

A tenant of its own: the profit ranking is over the whole tenant, so the world's
customers would move the expected numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import pytest

from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Forbidden
from dangan.services.people import Person, caller_for, create_user
from dangan.services.rating import (
    CRITERIA,
    HIDDEN,
    latest_ratings,
    rate_all_customers,
    rate_customers,
    rating_history,
    set_rating_criteria,
)
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.rating import (
    HISTORIES,
    add_purchases,
    history_rows,
    insert_history,
    reset_criteria,
)
from tests.support.tenants import drop_tenant

T = TypeVar("T")
SLUG = "rating_svc"
DEFAULT_WEIGHTS = [("profit", 40), ("loyalty", 25), ("potential", 20), ("competition", 15)]


@dataclass
class Scratch:
    ref: TenantRef
    people: dict[str, Person]
    ids: dict[str, uuid.UUID]

    def caller(self, who: str) -> Caller:
        return caller_for(self.ref, self.people[who])

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        return await run_in_tenant(self.ref, work)


@pytest.fixture(scope="module")
async def tenant(world: Any) -> AsyncIterator[tuple[TenantRef, dict[str, Person]]]:
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Rating Services Ltd")
    people = {
        "admin": await create_user(ref, "admin@rating-svc.test", ["admin"]),
        "sales": await create_user(ref, "sales@rating-svc.test", ["sales"], department="销售部"),
    }
    yield ref, people
    await drop_tenant(SLUG)


@pytest.fixture
async def scratch(tenant: tuple[TenantRef, dict[str, Person]]) -> Scratch:
    """The hand-made histories, owned by the salesperson, criteria at their defaults."""
    ref, people = tenant
    sales = people["sales"]

    async def fill() -> dict[str, uuid.UUID]:
        await raw_connection().execute("DELETE FROM customer")
        await reset_criteria()
        return {
            h.key: await insert_history(
                h,
                owner_id=sales.identity_id,
                department_id=sales.department_id,
                name_prefix="评级",
            )
            for h in HISTORIES
        }

    return Scratch(ref, people, await run_in_tenant(ref, fill))


async def _columns(scratch: Scratch) -> dict[str, Any]:
    rows = await scratch.run(
        lambda: raw_connection().fetch(
            "SELECT id, rating_score, rating_grade, rated_at FROM customer"
        )
    )
    by_id = {row["id"]: row for row in rows}
    return {key: by_id[cid] for key, cid in scratch.ids.items()}


async def _rate_all(scratch: Scratch, trigger: Any = "nightly", batch_size: int = 2) -> int:
    return await rate_all_customers(scratch.ref, trigger, batch_size=batch_size)


async def test_scores_of_hand_made_histories(scratch: Scratch) -> None:
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    rated = await rate_all_customers(scratch.ref, "nightly", batch_size=2, on_progress=progress)
    assert rated == 5  # the merged one is skipped
    assert seen == [(2, 5), (4, 5), (5, 5)]
    columns = await _columns(scratch)
    for history in HISTORIES:
        row = columns[history.key]
        if history.status == "MERGED":
            assert row["rating_score"] is None and row["rated_at"] is None
            continue
        assert (row["rating_score"], row["rating_grade"]) == (history.score, history.grade), (
            history.key
        )
        [entry] = await scratch.run(lambda h=history: history_rows(scratch.ids[h.key]))
        assert (entry["score"], entry["grade"], entry["trigger"]) == (
            history.score,
            history.grade,
            "nightly",
        )
        stored = orjson.loads(entry["criteria"])
        scores = tuple(Decimal(str(stored[code]["score"])) for code in CRITERIA)
        assert scores == history.criteria, history.key
        assert [stored[code]["weight"] for code in CRITERIA] == [40, 25, 20, 15]


async def test_explanations_say_why_with_amounts_only_for_financial_readers(
    scratch: Scratch,
) -> None:
    await _rate_all(scratch)
    mid = scratch.ids["mid"]
    admin = await scratch.run(lambda: latest_ratings(scratch.caller("admin"), [mid]))
    view = admin[mid]
    assert view is not None and view != HIDDEN
    said = {c.criterion: c.explanation for c in view.criteria}
    assert said == {
        "profit": "profit ¥1,100 in the last 12 months: better than 75% of customers",
        "loyalty": "2 orders in the last 12 months, customer for 4.0 years",
        "potential": "staff assessment 4/5; 1 open opportunity worth ¥500,000",
        "competition": "competition risk low",
    }
    assert [c.contribution for c in view.criteria] == [
        Decimal("30.00"),
        Decimal("12.08"),
        Decimal("18.00"),
        Decimal("15.00"),
    ]
    # The owner sees business in full but not financial (purchase costs): no amount.
    sales = await scratch.run(lambda: latest_ratings(scratch.caller("sales"), [mid]))
    own = sales[mid]
    assert own is not None and own != HIDDEN
    said = {c.criterion: c.explanation for c in own.criteria}
    assert said["profit"] == (
        "profit of the last 12 months better than 75% of customers (amount withheld)"
    )
    assert said["potential"] == "staff assessment 4/5; 1 open opportunity worth ¥500,000"
    new = await scratch.run(lambda: latest_ratings(scratch.caller("sales"), [scratch.ids["new"]]))
    explained = {c.criterion: c.explanation for c in new[scratch.ids["new"]].criteria}  # type: ignore[union-attr]
    assert explained == {
        "profit": "no purchases in the last 12 months",
        "loyalty": "0 orders in the last 12 months, customer for 0.0 years",
        "potential": "not assessed by staff (counted as average); no open opportunities",
        "competition": "competition risk not assessed (counted as neutral)",
    }


async def test_history_only_on_change(scratch: Scratch) -> None:
    await _rate_all(scratch)
    before = await _columns(scratch)
    assert await _rate_all(scratch, "nightly") == 5
    after = await _columns(scratch)
    for key in ("mid", "top", "new"):
        assert len(await scratch.run(lambda k=key: history_rows(scratch.ids[k]))) == 1
        assert after[key]["rated_at"] >= before[key]["rated_at"]
    # A purchase for "new": its profit rank and loyalty change, so it gets a second row;
    # "idle" ties no longer with "new" and keeps its score (rank 0.25 → forced 0 anyway).
    new = scratch.ids["new"]
    await scratch.run(lambda: add_purchases(new, [("N1", "200", "100", 1)]))
    assert await scratch.run(lambda: rate_customers([new, scratch.ids["idle"]], "change")) == 2
    rows = await scratch.run(lambda: history_rows(new))
    assert [(r["trigger"], r["grade"]) for r in rows] == [("nightly", "D"), ("change", "D")]
    assert rows[1]["score"] > rows[0]["score"]
    assert len(await scratch.run(lambda: history_rows(scratch.ids["idle"]))) == 1
    history = await scratch.run(lambda: rating_history(scratch.caller("admin"), str(new), 20))
    assert history is not None and [h.trigger for h in history] == ["change", "nightly"]


async def test_grade_floors_are_inclusive_and_new_criteria_rerate(scratch: Scratch) -> None:
    await _rate_all(scratch)
    admin = scratch.caller("admin")
    await scratch.run(
        lambda: set_rating_criteria(
            admin, DEFAULT_WEIGHTS, {"a": Decimal("94"), "b": Decimal("75.08"), "c": 17.5}
        )
    )
    await _rate_all(scratch, "criteria")
    columns = await _columns(scratch)
    grades = {key: columns[key]["rating_grade"] for key in ("top", "mid", "new", "idle", "loss")}
    assert grades == {"top": "A", "mid": "B", "new": "C", "idle": "C", "loss": "D"}
    # Only the grades that moved got a history row.
    moved = {
        key: [r["trigger"] for r in await scratch.run(lambda k=key: history_rows(scratch.ids[k]))]
        for key in grades
    }
    assert moved == {
        "top": ["nightly"],
        "mid": ["nightly"],
        "new": ["nightly", "criteria"],
        "idle": ["nightly", "criteria"],
        "loss": ["nightly"],
    }
    # Weights: profit alone.
    await scratch.run(
        lambda: set_rating_criteria(
            admin,
            [("profit", 100), ("loyalty", 0), ("potential", 0), ("competition", 0)],
            {"a": 80, "b": 60, "c": 40},
        )
    )
    await _rate_all(scratch, "criteria")
    columns = await _columns(scratch)
    assert (columns["mid"]["rating_score"], columns["mid"]["rating_grade"]) == (Decimal("75"), "B")
    assert (columns["top"]["rating_score"], columns["top"]["rating_grade"]) == (Decimal("100"), "A")


@pytest.mark.parametrize(
    ("weights", "floors", "field"),
    [
        ([("profit", 50), ("loyalty", 25), ("potential", 20), ("competition", 15)], {}, "weights"),
        ([("profit", 40), ("loyalty", 25), ("potential", 35)], {}, "weights"),
        (
            [("profit", 120), ("loyalty", -20), ("potential", 0), ("competition", 0)],
            {},
            "weights[0].weight",
        ),
        (
            [("profit", 40), ("profit", 25), ("potential", 20), ("competition", 15)],
            {},
            "weights[1].criterion",
        ),
        (
            [("price", 40), ("loyalty", 25), ("potential", 20), ("competition", 15)],
            {},
            "weights[0].criterion",
        ),
        (
            [("profit", 40.123), ("loyalty", 25), ("potential", 20), ("competition", 15)],
            {},
            "weights[0].weight",
        ),
        (DEFAULT_WEIGHTS, {"a": 60, "b": 60, "c": 40}, "floors.a"),
        (DEFAULT_WEIGHTS, {"a": 80, "b": 30, "c": 40}, "floors.b"),
        (DEFAULT_WEIGHTS, {"a": 101, "b": 60, "c": 40}, "floors.a"),
        (DEFAULT_WEIGHTS, {"a": 80, "b": 60}, "floors.c"),
        (DEFAULT_WEIGHTS, {"a": 80, "b": 60, "c": float("nan")}, "floors.c"),
    ],
)
async def test_bad_criteria_name_the_field_and_change_nothing(
    tenant: tuple[TenantRef, dict[str, Person]], weights: Any, floors: Any, field: str
) -> None:
    ref, people = tenant
    given = floors or {"a": 80, "b": 60, "c": 40}
    with pytest.raises(BadUserInput) as caught:
        await run_in_tenant(
            ref, lambda: set_rating_criteria(caller_for(ref, people["admin"]), weights, given)
        )
    assert caught.value.field == field


async def test_only_administrators_set_criteria(scratch: Scratch) -> None:
    with pytest.raises(Forbidden):
        await scratch.run(
            lambda: set_rating_criteria(
                scratch.caller("sales"), DEFAULT_WEIGHTS, {"a": 80, "b": 60, "c": 40}
            )
        )


async def test_unknown_trigger_is_refused(scratch: Scratch) -> None:
    with pytest.raises(ValueError, match="trigger"):
        await scratch.run(lambda: rate_customers([scratch.ids["mid"]], "whenever"))  # type: ignore[arg-type]
