"""Phase 2: what is past its grace period is checked again and destroyed, one
transaction per customer, with a destruction record; files leave S3 only after the
commit; a legal hold or a missing approval stops it; a rerun destroys nothing twice."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dangan.services.retention import subject_hash
from dangan.services.retention.destruction import CUSTOMER_REFERENCES
from dangan.services.retention.records import content_hash
from dangan.storage import ObjectStore
from tests.retention.support import YEAR, Scratch, attach, now
from tests.support.api import Api

GRACE = timedelta(days=30)
DAY = timedelta(days=1)


async def _left_behind(scratch: Scratch, ids: list[uuid.UUID]) -> dict[str, int]:
    """Rows of any table referencing the customers, by table (none once destroyed)."""
    found: dict[str, int] = {}
    for table, column in CUSTOMER_REFERENCES:
        count = await scratch.value(
            f"SELECT count(*) FROM {table} WHERE {column} = ANY($1::uuid[])", ids
        )
        if count:
            found[table] = count
    return found


async def test_an_invalid_customer_goes_whole_after_the_grace_period_with_its_record(
    scratch: Scratch, objects: ObjectStore
) -> None:
    start = now()
    gone = await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    other = await scratch.customer("在用客户")
    merged = await scratch.customer("重复档案", age=5 * YEAR)
    await scratch.sql(
        "UPDATE customer SET status = 'MERGED', merged_into = $2 WHERE id = $1", merged, gone
    )
    await scratch.communication(gone, start - 2 * YEAR)
    await scratch.sql(
        "INSERT INTO contact_person (customer_id, name, phone) VALUES ($1, '张三', '13800001111')",
        gone,
    )
    await scratch.sql(
        "INSERT INTO field_reveal (customer_id, field, actor_kind, actor_id, reason)"
        " VALUES ($1, 'phone', 'user', $2, '核对')",
        gone,
        scratch.id_of("admin"),
    )
    await scratch.sql(
        "INSERT INTO legal_hold (customer_id, reason, placed_by, released_by, released_at,"
        " release_reason) VALUES ($1, '旧诉讼保全', $2, $2, now() - interval '2 years', '结案')",
        gone,
        scratch.id_of("auditor"),
    )
    key = await attach(scratch, objects, gone)
    only_gone = await scratch.share([gone], start - timedelta(days=100))
    shared_too = await scratch.share([gone, other], start - timedelta(days=100))

    await scratch.run(objects, at=start)
    early = await scratch.run(objects, at=start + GRACE - DAY)
    assert early.destructions == [] and await scratch.exists("customer", gone)

    clock = start + GRACE + DAY
    report = await scratch.run(objects, at=clock)

    (outcome,) = report.destructions
    assert outcome.status == "destroyed" and outcome.objects_queued == 1
    assert not await scratch.exists("customer", gone)
    assert not await scratch.exists("customer", merged)
    assert await _left_behind(scratch, [gone, merged]) == {}
    assert not await scratch.exists("share_request", only_gone)
    assert await scratch.exists("share_request", shared_too)  # it still shares `other`
    assert await scratch.exists("customer", other)
    assert await objects.stat(key) is None
    assert await objects.stat(key + ".upload") is None
    assert await scratch.value("SELECT count(*) FROM retention_object_removal") == 0

    (record,) = await scratch.records()
    secret = scratch.settings.secret_key
    assert record["rule"] == "invalid_customers" and record["record_type"] == "customer"
    assert record["reason"].startswith("status INVALID since ")
    assert "rule invalid_customers: 36 months, 30 days' notice" in record["reason"]
    assert record["counts"] == {
        "customer": 1,
        "merged_customer": 1,
        "contact_person": 1,
        "communication": 1,
        "opportunity": 0,
        "purchase": 0,
        "contract": 0,
        "payment_record": 0,
        "customer_need": 0,
        "complaint": 0,
        "satisfaction_survey": 0,
        "attachment": 1,
        "customer_change": record["counts"]["customer_change"],
        "customer_rating": 2,  # rated when each was created
        "field_reveal": 1,
        "share_request_customer": 2,
        "customer_merge": 0,
        "legal_hold": 1,
        "retention_candidate": 1,
        "share_request": 1,
        "share_event": 1,
    }
    assert record["counts"]["customer_change"] >= 2  # its creation, the communication
    assert record["customer_hash"] == subject_hash(secret, gone)
    assert record["subject_hashes"] == [subject_hash(secret, gone), subject_hash(secret, merged)]
    assert str(gone) not in repr(record) and "旧无效" not in repr(record)
    assert record["as_of"] == clock and record["operator_clock"] is True  # (a test's clock)
    assert record["origin"] == "job"
    assert abs(record["destroyed_at"] - now()) < timedelta(minutes=1)
    assert record["approved_by"] is None and record["operator"] is None
    assert record["record_hash"] == content_hash(record["id"], record)

    (event,) = await scratch.events("purge.destroy")
    assert event["seq"] == record["audit_seq"] and event["customers"] == []
    assert event["variables"]["recordHash"] == record["record_hash"]
    assert event["variables"]["record"] == record["id"]
    assert event["variables"]["counts"] == record["counts"]

    again = await scratch.run(objects, at=clock)  # a rerun finds nothing left to do
    assert again.destructions == [] and again.marked == []
    assert len(await scratch.records()) == 1 and len(await scratch.events("purge.destroy")) == 1


async def test_communications_and_shares_go_on_their_own_and_the_customer_stays(
    scratch: Scratch, objects: ObjectStore
) -> None:
    start = now()
    customer = await scratch.customer("老客户", age=7 * YEAR)
    old_calls = [await scratch.communication(customer, start - 6 * YEAR - DAY * i) for i in (1, 2)]
    recent = await scratch.communication(customer, start - YEAR)
    share = await scratch.share([customer], start - 2 * YEAR)
    await scratch.run(objects, at=start)

    report = await scratch.run(objects, at=start + GRACE + DAY)

    by_type = {outcome.group.record_type: outcome for outcome in report.destructions}
    assert set(by_type) == {"communication", "share_request"}
    assert by_type["communication"].counts == {"communication": 2, "customer_change": 2}
    assert by_type["share_request"].counts == {
        "share_request": 1,
        "share_request_customer": 1,
        "share_event": 1,
    }
    assert await scratch.exists("customer", customer)
    assert await scratch.exists("communication", recent)
    assert not any([await scratch.exists("communication", c) for c in old_calls])
    assert not await scratch.exists("share_request", share)
    changes = await scratch.value(
        "SELECT count(*) FROM customer_change WHERE record_id = ANY($1::uuid[])", old_calls
    )
    assert changes == 0
    records = {r["record_type"]: r for r in await scratch.records()}
    secret = scratch.settings.secret_key
    assert records["communication"]["customer_hash"] == subject_hash(secret, customer)
    assert sorted(records["communication"]["subject_hashes"]) == sorted(
        subject_hash(secret, c) for c in old_calls
    )
    assert records["communication"]["reason"].startswith("2 communication(s) of ")
    assert records["share_request"]["customer_hash"] is None
    assert records["share_request"]["subject_hashes"] == [subject_hash(secret, share)]


async def test_a_legal_hold_blocks_the_purge_until_it_is_released(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    start = now()
    held = await scratch.customer("诉讼客户", status="INVALID", age=4 * YEAR)
    call = await scratch.communication(held, start - 6 * YEAR)
    await scratch.run(objects, at=start)
    assert len(await scratch.candidates()) == 2

    reply = await api.post(
        scratch.slug,
        scratch.tokens["auditor"],
        'mutation($id: ID!) { placeLegalHold(customerId: $id, reason: "合同纠纷诉讼中") {'
        " id active placedBy placedByName } }",
        {"id": str(held)},
    )
    hold = reply.ok()["placeLegalHold"]
    assert hold["active"] and hold["placedBy"] == scratch.id_of("auditor")
    assert await scratch.candidates() == []
    reasons = {c["unmark_reason"] for c in await scratch.candidates("unmarked")}
    assert reasons == {f"legal hold {hold['id']} placed"}

    blocked = await scratch.run(objects, at=start + GRACE + DAY)
    assert blocked.destructions == [] and blocked.marked == []
    assert await scratch.exists("customer", held) and await scratch.exists("communication", call)
    with pytest.raises(Exception, match="legal hold"):  # the database refuses it too
        await scratch.sql("DELETE FROM customer WHERE id = $1", held)

    reply = await api.post(
        scratch.slug,
        scratch.tokens["admin"],
        'mutation($id: ID!) { releaseLegalHold(id: $id, reason: "诉讼已结案") { active } }',
        {"id": hold["id"]},
    )
    assert reply.ok()["releaseLegalHold"]["active"] is False
    remarked = await scratch.run(objects, at=start + GRACE + DAY)  # a full grace period again
    assert len(remarked.marked) == 2 and remarked.destructions == []

    done = await scratch.run(objects, at=start + 2 * GRACE + 2 * DAY)
    (outcome,) = done.destructions  # the customer, its old communication with it
    assert outcome.group.record_type == "customer" and outcome.counts["communication"] == 1
    assert outcome.counts["legal_hold"] == 1  # the released hold goes with its customer
    assert not await scratch.exists("customer", held)


async def test_a_rule_that_requires_an_approval_waits_for_one(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    start = now()
    reply = await api.post(
        scratch.slug,
        scratch.tokens["admin"],
        'mutation { setRetentionRule(rule: "invalid_customers", input: {requiresApproval: true})'
        " { requiresApproval } }",
    )
    assert reply.ok()["setRetentionRule"]["requiresApproval"] is True
    customer = await scratch.customer("待批准", status="INVALID", age=4 * YEAR)
    await scratch.run(objects, at=start)
    (candidate,) = await scratch.candidates()

    waiting = await scratch.run(objects, at=start + GRACE + DAY)
    assert waiting.destructions == [] and [w.record_id for w in waiting.waiting] == [customer]
    assert await scratch.exists("customer", customer)

    approve = """mutation($ids: [ID!]!) { approveRetentionCandidates(ids: $ids) {
        id approvedBy approvedByName requiresApproval } }"""
    refused = await api.post(
        scratch.slug, scratch.tokens["sales"], approve, {"ids": [str(candidate["id"])]}
    )
    assert refused.codes == ["FORBIDDEN"]
    missing = await api.post(scratch.slug, scratch.tokens["auditor"], approve, {"ids": ["999999"]})
    assert missing.codes == ["NOT_FOUND"] and missing.errors[0]["extensions"]["field"] == "ids"
    reply = await api.post(
        scratch.slug, scratch.tokens["auditor"], approve, {"ids": [str(candidate["id"])]}
    )
    (approved,) = reply.ok()["approveRetentionCandidates"]
    assert approved["approvedBy"] == scratch.id_of("auditor")

    done = await scratch.run(objects, at=start + GRACE + DAY)
    assert len(done.destructions) == 1
    (record,) = await scratch.records()
    assert record["approved_by"] == scratch.id_of("auditor")
    assert record["approved_by_name"] == f"{scratch.slug}-auditor"
    assert record["approved_at"] is not None


async def test_a_destruction_that_rolls_back_removes_no_file(
    scratch: Scratch, objects: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = now()
    customer = await scratch.customer("回滚客户", status="INVALID", age=4 * YEAR)
    key = await attach(scratch, objects, customer)
    await scratch.run(objects, at=start)

    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("dangan.services.retention.destruction.write_record", broken)
    with pytest.raises(RuntimeError):
        await scratch.run(objects, at=start + GRACE + DAY)

    assert await scratch.exists("customer", customer)
    assert await objects.stat(key) is not None
    assert await scratch.value("SELECT count(*) FROM retention_object_removal") == 0
    assert await scratch.records() == []
    (failure,) = await scratch.events("retention.run")
    assert failure["outcome"] == "error"


async def test_files_left_by_a_crash_after_the_commit_go_with_the_next_run(
    scratch: Scratch, objects: ObjectStore, monkeypatch: pytest.MonkeyPatch, api: Api
) -> None:
    start = now()
    customer = await scratch.customer("崩溃客户", status="INVALID", age=4 * YEAR)
    key = await attach(scratch, objects, customer)
    await scratch.run(objects, at=start)
    real = objects.remove

    async def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionError("S3 is unreachable")

    monkeypatch.setattr(objects, "remove", crash)
    report = await scratch.run(objects, at=start + GRACE + DAY)
    assert report.objects_failed == 1 and report.objects_removed == 0
    assert not await scratch.exists("customer", customer)  # committed
    assert await objects.stat(key) is not None
    (todo,) = await scratch.sql("SELECT * FROM retention_object_removal")
    assert todo["object_key"] == key and todo["attempts"] == 1
    records = """{ destructionRecords { id objectsPending intact } }"""
    (listed,) = (await api.post(scratch.slug, scratch.tokens["auditor"], records)).ok()[
        "destructionRecords"
    ]
    assert listed["objectsPending"] == 1 and listed["intact"] is True

    monkeypatch.setattr(objects, "remove", real)
    later = await scratch.run(objects, at=start + GRACE + 2 * DAY)
    assert later.objects_removed == 1
    assert await objects.stat(key) is None
    (listed,) = (await api.post(scratch.slug, scratch.tokens["auditor"], records)).ok()[
        "destructionRecords"
    ]
    assert listed["objectsPending"] == 0
