"""Phase 1: each rule marks what it applies to (set-based), once; held customers are
skipped; a candidate whose reason went away is unmarked with that reason; owners read
their notices and nobody reads another's."""

from __future__ import annotations

from datetime import timedelta

from dangan.storage import ObjectStore
from tests.retention.support import YEAR, Scratch, now
from tests.support.api import Api

CANDIDATES = """query($filter: RetentionCandidateFilter) { retentionCandidates(filter: $filter) {
  id rule recordType recordId customerId ownerId reason markedAt dueAt status } }"""


async def test_each_rule_marks_what_it_applies_to_and_nothing_else(
    scratch: Scratch, objects: ObjectStore
) -> None:
    old_invalid = await scratch.customer("旧无效", status="INVALID", age=3 * YEAR)
    new_invalid = await scratch.customer("新无效", status="INVALID", age=YEAR)
    idle_potential = await scratch.customer("沉睡潜客", kind="POTENTIAL", age=2 * YEAR)
    idle_by_tier = await scratch.customer("潜力级", tier="POTENTIAL", age=2 * YEAR, owner="sales2")
    busy_potential = await scratch.customer("活跃潜客", kind="POTENTIAL", age=2 * YEAR)
    await scratch.communication(busy_potential, now() - timedelta(days=40))
    old_ordinary = await scratch.customer("老客户", age=6 * YEAR)
    old_call = await scratch.communication(old_ordinary, now() - 5 * YEAR)
    recent_call = await scratch.communication(old_ordinary, now() - 4 * YEAR)
    old_share = await scratch.share([old_ordinary], now() - YEAR - timedelta(days=2))
    await scratch.share([old_ordinary], now() - timedelta(days=200))

    report = await scratch.run(objects)

    marked = {(c["rule"], c["record_id"]) for c in await scratch.candidates()}
    assert marked == {
        ("invalid_customers", old_invalid),
        ("inactive_potential_customers", idle_potential),
        ("inactive_potential_customers", idle_by_tier),
        ("communication_records", old_call),
        ("expired_share_grants", old_share),
    }
    assert {(line.rule, line.record_id) for line in report.marked} == marked
    assert new_invalid and recent_call  # (not marked: too young)
    assert report.destructions == []  # nothing is due before its grace period
    by_record = {c["record_id"]: c for c in await scratch.candidates()}
    invalid = by_record[old_invalid]
    assert invalid["reason"].startswith("status INVALID since ")
    assert invalid["due_at"] - invalid["marked_at"] == timedelta(days=30)
    assert invalid["owner_id"] == scratch.id_of("sales")
    assert by_record[idle_by_tier]["owner_id"] == scratch.id_of("sales2")
    assert by_record[old_call]["customer_id"] == old_ordinary
    assert by_record[old_share]["customer_id"] is None
    assert by_record[old_share]["owner_id"] == scratch.id_of("sales")  # the requester
    assert "no activity since" in by_record[idle_potential]["reason"]

    (event,) = await scratch.events("retention.mark")
    assert event["actor_kind"] == "system" and event["operation_type"] == "job"
    assert event["variables"]["marked"] == {
        "invalid_customers": 1,
        "inactive_potential_customers": 2,
        "communication_records": 1,
        "expired_share_grants": 1,
    }
    assert set(event["customers"]) == {old_invalid, idle_potential, idle_by_tier, old_ordinary}

    again = await scratch.run(objects)  # idempotent: nothing new, nothing twice
    assert again.marked == [] and again.unmarked == []
    assert len(await scratch.candidates()) == 5
    assert len(await scratch.events("retention.mark")) == 1


async def test_a_candidate_whose_reason_went_away_is_unmarked_with_that_reason(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    idle = await scratch.customer("沉睡潜客", kind="POTENTIAL", age=2 * YEAR)
    invalid = await scratch.customer("旧无效", status="INVALID", age=3 * YEAR)
    await scratch.run(objects)
    assert len(await scratch.candidates()) == 2

    reply = await api.post(
        scratch.slug,
        scratch.tokens["sales"],
        """mutation($id: ID!, $input: CommunicationInput!) {
             addCommunication(customerId: $id, input: $input) { id } }""",
        {
            "id": str(idle),
            "input": {"channel": "CALL", "occurredAt": now().isoformat(), "summary": "客户回电"},
        },
    )
    reply.ok()
    reply = await api.post(
        scratch.slug,
        scratch.tokens["admin"],
        'mutation($id: ID!) { setCustomerStatus(id: $id, status: ACTIVE, reason: "重新合作") { status } }',
        {"id": str(invalid)},
    )
    reply.ok()

    report = await scratch.run(objects)

    reasons = {line.record_id: line.reason for line in report.unmarked}
    today = now().date().isoformat()
    assert reasons == {idle: f"there was activity on {today}", invalid: "its status is now ACTIVE"}
    assert await scratch.candidates() == []
    unmarked = {c["record_id"]: c["unmark_reason"] for c in await scratch.candidates("unmarked")}
    assert unmarked == reasons
    assert report.marked == []
    _, second = await scratch.events("retention.mark")
    assert second["variables"]["unmarked"] == {
        "inactive_potential_customers": 1,
        "invalid_customers": 1,
    }


async def test_held_customers_are_never_marked(scratch: Scratch, objects: ObjectStore) -> None:
    held = await scratch.customer("保全客户", status="INVALID", age=4 * YEAR)
    call = await scratch.communication(held, now() - 6 * YEAR)
    share = await scratch.share([held], now() - 2 * YEAR)
    await scratch.sql(
        "INSERT INTO legal_hold (customer_id, reason, placed_by) VALUES ($1, '诉讼保全中', $2)",
        held,
        scratch.id_of("auditor"),
    )

    report = await scratch.run(objects)

    assert report.marked == [] and await scratch.candidates() == []
    assert call and share


async def test_owners_read_their_notices_and_nobody_else_s(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    mine = await scratch.customer("我的客户", status="INVALID", age=4 * YEAR, owner="sales")
    theirs = await scratch.customer("别人的客户", status="INVALID", age=4 * YEAR, owner="sales2")
    await scratch.run(objects)

    async def seen(who: str, **flt: object) -> set[str]:
        reply = await api.post(scratch.slug, scratch.tokens[who], CANDIDATES, {"filter": flt})
        return {c["customerId"] for c in reply.ok()["retentionCandidates"]}

    assert await seen("sales") == {str(mine)}
    assert await seen("sales2") == {str(theirs)}
    assert await seen("sales", customerId=str(theirs)) == set()  # hidden: nothing to see
    assert await seen("auditor") == {str(mine), str(theirs)}
    assert await seen("admin", mine=True) == set()  # owns none of them
    assert await seen("manager") == {str(mine), str(theirs)}  # their department's customers
    app = await api.post(scratch.slug, scratch.app_key, CANDIDATES)
    assert app.codes == ["FORBIDDEN"]
    anonymous = await api.post(scratch.slug, None, CANDIDATES)
    assert anonymous.codes == ["UNAUTHENTICATED"]
    bad = await api.post(
        scratch.slug, scratch.tokens["auditor"], CANDIDATES, {"filter": {"rule": "everything"}}
    )
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "rule"
