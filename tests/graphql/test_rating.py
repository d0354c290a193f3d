"""Rating through the API: recompute, Customer.rating, history, criteria (admin only,
validated, re-rating job enqueued) and the job's progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from dangan.services.rating import views
from dangan.services.rating.jobs import arq_job_id
from dangan.settings import Settings
from tests.support.api import Api
from tests.support.rating import HISTORIES, remove_world_histories, seed_world_histories
from tests.support.world import World, missing_id

RATING = (
    "score grade computedAt trigger criteria { criterion weight score contribution explanation }"
)
RECOMPUTE = f"mutation($id: ID!) {{ recomputeRating(customerId: $id) {{ {RATING} }} }}"
DETAIL = f"query($id: ID!) {{ customer(id: $id) {{ name rating {{ {RATING} }} }} }}"
HISTORY = f"query($id: ID!, $n: Int) {{ ratingHistory(customerId: $id, first: $n) {{ {RATING} }} }}"
CRITERIA = "{ ratingCriteria { weights { criterion weight } floors { a b c } jobId } }"
SET = (
    "mutation($w: [RatingWeightInput!]!, $f: GradeFloorsInput!) {"
    " setRatingCriteria(weights: $w, floors: $f) { weights { criterion weight } floors { a b c }"
    " jobId } }"
)
JOB = "query($id: ID!) { ratingJob(id: $id) { id status done total stage } }"
WEIGHTS = [
    {"criterion": "PROFIT", "weight": 40},
    {"criterion": "LOYALTY", "weight": 25},
    {"criterion": "POTENTIAL", "weight": 20},
    {"criterion": "COMPETITION", "weight": 15},
]
FLOORS = {"a": 80, "b": 60, "c": 40}
EXPECTED = {h.key: h for h in HISTORIES}


@pytest.fixture(scope="module")
async def rated(world: World) -> AsyncIterator[dict[str, uuid.UUID]]:
    ids = await seed_world_histories(world["alpha"])
    yield ids
    await remove_world_histories(world["alpha"])


async def test_recompute_then_read_on_the_customer(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    token = world["alpha"].tokens["sales"]
    top = str(rated["top"])
    rating = (await api.post("alpha", token, RECOMPUTE, {"id": top})).ok()["recomputeRating"]
    assert rating["grade"] == "A" and rating["trigger"] == "manual"
    # The top customer of alpha by profit; the others are as hand-computed.
    assert [c["criterion"] for c in rating["criteria"]] == [
        "PROFIT",
        "LOYALTY",
        "POTENTIAL",
        "COMPETITION",
    ]
    assert [c["score"] for c in rating["criteria"]] == [100, 100, 100, 60]
    assert rating["score"] == 94.0
    assert sum(c["contribution"] for c in rating["criteria"]) == pytest.approx(94.0)
    detail = (await api.post("alpha", token, DETAIL, {"id": top})).ok()["customer"]
    assert detail["rating"]["score"] == 94.0
    assert detail["rating"]["criteria"] == rating["criteria"]
    # Never rated: null, and not a redaction.
    fresh = await api.post("alpha", token, DETAIL, {"id": str(rated["new"])})
    assert fresh.ok()["customer"]["rating"] is None
    assert "redacted" not in (fresh.body.get("extensions") or {})


async def test_a_page_of_customers_with_their_ratings(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    admin = world["alpha"].tokens["admin"]
    for key in ("mid", "loss"):
        (await api.post("alpha", admin, RECOMPUTE, {"id": str(rated[key])})).ok()
    query = "{ customers(first: 100) { nodes { id rating { score grade } } } }"
    nodes = (await api.post("alpha", admin, query)).ok()["customers"]["nodes"]
    by_id = {node["id"]: node["rating"] for node in nodes}
    assert by_id[str(rated["loss"])] == {"score": 8.08, "grade": "D"}
    # "mid" ranks among alpha's customers (the world's six have no purchases), so its
    # profit score differs from the scratch tenant's; its grade is still computed.
    assert by_id[str(rated["mid"])]["grade"] in "ABCD"
    # The world's customers were rated when they were created (no purchases: grade D).
    assert all(by_id[str(c["id"])]["grade"] == "D" for c in world["alpha"].customers)


async def test_ratings_of_a_page_take_one_query(
    api: Api, world: World, rated: dict[str, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    read = views._read

    async def counted(access: Any, ids: list[uuid.UUID], limit: int) -> Any:
        calls.append(len(ids))
        return await read(access, ids, limit)

    monkeypatch.setattr(views, "_read", counted)
    query = "{ customers(first: 100) { nodes { rating { grade } } } }"
    nodes = (await api.post("alpha", world["alpha"].tokens["admin"], query)).ok()
    assert calls == [len(nodes["customers"]["nodes"])] and calls[0] >= 11


async def test_history_only_when_the_rating_moves_and_its_errors(
    api: Api, world: World, rated: dict[str, uuid.UUID]
) -> None:
    token = world["alpha"].tokens["sales"]
    idle = str(rated["idle"])
    for _ in range(2):
        (await api.post("alpha", token, RECOMPUTE, {"id": idle})).ok()
    history = (await api.post("alpha", token, HISTORY, {"id": idle})).ok()["ratingHistory"]
    assert [(h["trigger"], h["grade"]) for h in history] == [("manual", "D")]
    assert history[0]["score"] == float(EXPECTED["idle"].score or 0)
    for bad in (missing_id(), "not-a-uuid", str(world["beta"].customers[0]["id"])):
        reply = await api.post("alpha", token, HISTORY, {"id": bad})
        assert reply.codes == ["NOT_FOUND"], bad
    sales2 = str(
        next(
            c["id"]
            for c in world["alpha"].customers
            if c["owner_id"] != world["alpha"].people["sales"].identity_id
        )
    )
    assert (await api.post("alpha", token, HISTORY, {"id": sales2})).codes == ["NOT_FOUND"]
    for n in (0, 201):
        reply = await api.post("alpha", token, HISTORY, {"id": idle, "n": n})
        assert (
            reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "first"
        )


async def test_recompute_refusals(api: Api, world: World, rated: dict[str, uuid.UUID]) -> None:
    t = world["alpha"]
    mid = str(rated["mid"])
    assert (await api.post("alpha", t.tokens["auditor"], RECOMPUTE, {"id": mid})).codes == [
        "FORBIDDEN"
    ]
    assert (await api.post("alpha", t.tokens["sales2"], RECOMPUTE, {"id": mid})).codes == [
        "NOT_FOUND"
    ]
    assert (
        await api.post("beta", world["beta"].tokens["admin"], RECOMPUTE, {"id": mid})
    ).codes == ["NOT_FOUND"]
    merged = await api.post("alpha", t.tokens["admin"], RECOMPUTE, {"id": str(rated["merged"])})
    assert (
        merged.codes == ["BAD_USER_INPUT"]
        and merged.errors[0]["extensions"]["field"] == "customerId"
    )
    assert (await api.post("alpha", t.tokens["manager"], RECOMPUTE, {"id": mid})).ok()


async def test_criteria_readable_by_readers(api: Api, world: World) -> None:
    t = world["alpha"]
    for who in (t.tokens["sales"], t.tokens["auditor"], t.keys["reader"], t.keys["writer"]):
        criteria = (await api.post("alpha", who, CRITERIA)).ok()["ratingCriteria"]
        assert criteria == {"weights": WEIGHTS, "floors": FLOORS, "jobId": None}
    assert (await api.post("alpha", None, CRITERIA)).status == 401


@pytest.mark.parametrize(
    ("weights", "floors", "field"),
    [
        ([{**w, "weight": 30} for w in WEIGHTS], FLOORS, "weights"),
        (WEIGHTS[:3], FLOORS, "weights"),
        ([{**WEIGHTS[0], "weight": 140}, *WEIGHTS[1:]], FLOORS, "weights[0].weight"),
        ([WEIGHTS[0], WEIGHTS[0], *WEIGHTS[2:]], FLOORS, "weights[1].criterion"),
        (WEIGHTS, {"a": 50, "b": 60, "c": 40}, "floors.a"),
        (WEIGHTS, {"a": 80, "b": 60, "c": 60}, "floors.b"),
        (WEIGHTS, {"a": 80, "b": 60, "c": -1}, "floors.c"),
    ],
)
async def test_bad_criteria_are_named(
    api: Api, world: World, weights: list, floors: dict, field: str
) -> None:
    reply = await api.post(
        "alpha", world["alpha"].tokens["admin"], SET, {"w": weights, "f": floors}
    )
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    criteria = (await api.post("alpha", world["alpha"].tokens["admin"], CRITERIA)).ok()
    assert criteria["ratingCriteria"]["weights"] == WEIGHTS  # nothing written


async def test_admin_sets_criteria_and_follows_the_job(
    api: Api, world: World, settings: Settings, redis: Redis
) -> None:
    t = world["alpha"]
    new = [{**WEIGHTS[0], "weight": 55}, {**WEIGHTS[1], "weight": 10}, *WEIGHTS[2:]]
    for who in ("sales", "manager", "auditor"):
        reply = await api.post("alpha", t.tokens[who], SET, {"w": new, "f": FLOORS})
        assert reply.codes == ["FORBIDDEN"], who
    assert (await api.post("alpha", t.keys["writer"], SET, {"w": new, "f": FLOORS})).codes == [
        "FORBIDDEN"
    ]
    floors = {"a": 85.5, "b": 60, "c": 30}
    changed = (await api.post("alpha", t.tokens["admin"], SET, {"w": new, "f": floors})).ok()
    job_id = changed["setRatingCriteria"]["jobId"]
    try:
        assert changed["setRatingCriteria"]["weights"] == new
        assert changed["setRatingCriteria"]["floors"] == floors
        assert job_id.startswith("rating:alpha:criteria-")
        seen = (await api.post("alpha", t.tokens["sales"], CRITERIA)).ok()["ratingCriteria"]
        assert seen == changed["setRatingCriteria"]
        job = (await api.post("alpha", t.tokens["admin"], JOB, {"id": job_id})).ok()["ratingJob"]
        assert job == {"id": job_id, "status": "queued", "done": None, "total": None, "stage": None}
        assert (await api.post("alpha", t.tokens["sales"], JOB, {"id": job_id})).codes == [
            "FORBIDDEN"
        ]
        beta_admin = world["beta"].tokens["admin"]
        assert (await api.post("beta", beta_admin, JOB, {"id": job_id})).codes == ["NOT_FOUND"]
        unknown = "rating:alpha:criteria-1"
        assert (await api.post("alpha", t.tokens["admin"], JOB, {"id": unknown})).codes == [
            "NOT_FOUND"
        ]
    finally:
        # The job stays off the shared queue (other tests count what their workers run).
        ident = arq_job_id(settings.redis_namespace, job_id)
        await redis.zrem(settings.queue_name, ident)
        await redis.delete(f"arq:job:{ident}")
        reset = await api.post("alpha", t.tokens["admin"], SET, {"w": WEIGHTS, "f": FLOORS})
        reset_id = reset.ok()["setRatingCriteria"]["jobId"]
        ident = arq_job_id(settings.redis_namespace, reset_id)
        await redis.zrem(settings.queue_name, ident)
        await redis.delete(f"arq:job:{ident}")
