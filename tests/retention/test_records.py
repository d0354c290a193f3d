"""The destruction record cannot be edited: the table refuses it, and an edit made by
switching that off shows against the hash its audit event carries. Who reads it."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from dangan.storage import ObjectStore
from tests.retention.support import YEAR, Scratch, now
from tests.support.api import Api
from tests.support.world import World

RECORDS = """query($filter: DestructionRecordFilter) { destructionRecords(filter: $filter) {
  id rule recordType reason counts customerHash subjectHashes markedAt dueAt approvedBy asOf
  destroyedAt origin operator recordHash auditSeq intact objectsPending } }"""


async def _destroyed(scratch: Scratch, objects: ObjectStore) -> str:
    """An invalid customer destroyed by a run; returns its id."""
    customer = await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    start = now()
    await scratch.run(objects, at=start)
    await scratch.run(objects, at=start + timedelta(days=31))
    return str(customer)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE destruction_record SET reason = 'nothing happened'",
        "DELETE FROM destruction_record",
        "TRUNCATE destruction_record CASCADE",
    ],
)
async def test_the_table_refuses_updates_deletes_and_truncation(
    scratch: Scratch, objects: ObjectStore, statement: str
) -> None:
    await _destroyed(scratch, objects)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="cannot be changed"):
        await scratch.sql(statement)
    assert len(await scratch.records()) == 1


async def test_an_edit_made_by_switching_the_trigger_off_shows(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    await _destroyed(scratch, objects)
    (before,) = (await api.post(scratch.slug, scratch.tokens["auditor"], RECORDS)).ok()[
        "destructionRecords"
    ]
    assert before["intact"] is True

    await scratch.sql(
        "ALTER TABLE destruction_record DISABLE TRIGGER destruction_record_append_only;"
    )
    await scratch.sql("UPDATE destruction_record SET counts = '{\"customer\": 0}'")
    (edited,) = (await api.post(scratch.slug, scratch.tokens["auditor"], RECORDS)).ok()[
        "destructionRecords"
    ]
    assert edited["intact"] is False

    # Recomputing the record's own hash too does not help: its audit event keeps the old one.
    await scratch.sql("UPDATE destruction_record SET record_hash = repeat('0', 64)")
    (rehashed,) = (await api.post(scratch.slug, scratch.tokens["auditor"], RECORDS)).ok()[
        "destructionRecords"
    ]
    assert rehashed["intact"] is False


async def test_who_reads_the_records_and_what_they_say(
    scratch: Scratch, objects: ObjectStore, api: Api, world: World
) -> None:
    customer = await _destroyed(scratch, objects)

    for who in ("admin", "auditor"):
        (record,) = (await api.post(scratch.slug, scratch.tokens[who], RECORDS)).ok()[
            "destructionRecords"
        ]
        assert record["rule"] == "invalid_customers" and record["counts"]["customer"] == 1
        assert record["customerHash"].startswith("hmac:") and customer not in str(record)
    for who in ("manager", "sales", "sales2"):
        refused = await api.post(scratch.slug, scratch.tokens[who], RECORDS)
        assert refused.codes == ["FORBIDDEN"], who
    assert (await api.post(scratch.slug, scratch.app_key, RECORDS)).codes == ["FORBIDDEN"]

    found = await api.post(
        scratch.slug, scratch.tokens["auditor"], RECORDS, {"filter": {"forId": customer}}
    )
    assert len(found.ok()["destructionRecords"]) == 1
    other = await api.post(
        scratch.slug,
        scratch.tokens["auditor"],
        RECORDS,
        {"filter": {"forId": str(world["alpha"].customers[0]["id"])}},
    )
    assert other.ok()["destructionRecords"] == []
    bad = await api.post(
        scratch.slug, scratch.tokens["auditor"], RECORDS, {"filter": {"forId": "not-an-id"}}
    )
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "forId"

    # Another tenant's auditor reads their own tenant's records: none of these.
    theirs = await api.post("alpha", world["alpha"].tokens["auditor"], RECORDS)
    assert theirs.ok()["destructionRecords"] == []
    # And a token of this tenant is refused by the other tenant outright.
    crossed = await api.post("alpha", scratch.tokens["auditor"], RECORDS)
    assert crossed.status == 403
