"""Destroyed stays destroyed: a restore of a backup taken before a purge brings back
neither what the purge destroyed (rows, attachment files) nor loses its destruction
records; legal holds placed or released since are kept; the audit trail still verifies
and the restore's event says what it destroyed again. A copy restored beside the live
tenant does not bring destroyed data back either."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import CheckpointStore, write_checkpoint
from dangan.audit.verify import verify_tenant
from dangan.backups.loading import restore
from dangan.backups.restore import RestoreReport, restore_as_new, restore_backup
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.services.retention import place_legal_hold, release_legal_hold, subject_hash
from dangan.services.retention.records import COLUMNS, HashedIds, check_records, decoded
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.backups.restores import assert_untouched, checksums, registry, take_backup
from tests.retention.support import YEAR, Scratch, attach, make_scratch, now
from tests.support.api import Api

BEFORE = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # the backup slots' clocks
AFTER = BEFORE + timedelta(hours=1)
PAST_GRACE = timedelta(days=31)
NOTHING = {"customer": 0, "communication": 0, "share_request": 0}
CUSTOMERS = "{ customers(first: 50) { edges { node { id name } } } }"
RECORDS = """query($filter: DestructionRecordFilter) {
  destructionRecords(filter: $filter) { id recordType intact } }"""


@dataclass
class Story:
    """A tenant whose retention run will destroy ``gone`` (with its file), ``old_call``
    (``kept``'s) and ``share``; ``held`` and ``kept`` stay."""

    scratch: Scratch
    start: datetime
    held: uuid.UUID
    gone: uuid.UUID
    kept: uuid.UUID
    old_call: uuid.UUID
    recent_call: uuid.UUID
    share: uuid.UUID
    held_file: str
    gone_file: str

    async def destroy(self, objects: ObjectStore) -> None:
        """Mark, then purge past the grace period, as the nightly job does."""
        await self.scratch.run(objects, at=self.start)
        report = await self.scratch.run(objects, at=self.start + PAST_GRACE)
        assert sorted(o.group.record_type for o in report.destructions) == [
            "communication",
            "customer",
            "share_request",
        ]


@pytest.fixture
async def story(slugs: Callable[[], str], settings: Settings, objects: ObjectStore) -> Story:
    scratch = await make_scratch(slugs(), settings)
    start = now()
    held = await scratch.customer("保全客户")
    gone = await scratch.customer("旧无效客户", status="INVALID", age=4 * YEAR)
    kept = await scratch.customer("老客户")
    old_call = await scratch.communication(kept, start - 6 * YEAR)
    recent_call = await scratch.communication(kept, start - YEAR)
    share = await scratch.share([kept], start - 2 * YEAR)
    return Story(
        scratch,
        start,
        held,
        gone,
        kept,
        old_call,
        recent_call,
        share,
        await attach(scratch, objects, held),
        await attach(scratch, objects, gone),
    )


async def _backup(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    story: Story,
    at: datetime,
) -> str:
    backup = backup_id("manual", at)
    await run_backup(settings, backups, objects, story.scratch.ref, backup, "manual", log)
    return backup


async def _hold(story: Story, customer: uuid.UUID, reason: str) -> int:
    caller = story.scratch.caller("admin")
    hold = await run_in_tenant(
        story.scratch.ref, lambda: place_legal_hold(caller, str(customer), reason)
    )
    return int(hold["id"])


async def _release(story: Story, hold: int) -> None:
    caller = story.scratch.caller("admin")
    await run_in_tenant(story.scratch.ref, lambda: release_legal_hold(caller, str(hold), "结案"))


async def _records(tenant: TenantRef) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        rows = await raw_connection().fetch(f"SELECT {COLUMNS} FROM destruction_record ORDER BY id")
        return [decoded(row) for row in rows]

    return await run_in_tenant(tenant, read)


async def _intact(tenant: TenantRef, records: list[dict[str, Any]]) -> list[bool | None]:
    checks = await run_in_tenant(tenant, lambda: check_records(records))
    return [checks[record["id"]].intact for record in records]


async def _restore_event(tenant: TenantRef) -> tuple[dict[str, Any], bytes]:
    async def read() -> Any:
        return await raw_connection().fetchrow(
            "SELECT variables, customers FROM audit_event WHERE 'backup.restore' = ANY(actions)"
            " ORDER BY seq DESC LIMIT 1"
        )

    row = await run_in_tenant(tenant, read)
    return orjson.loads(row["variables"]), row["customers"]


def _in(scratch: Scratch, tenant: TenantRef) -> Scratch:
    return replace(scratch, ref=tenant)


async def test_a_restore_destroys_again_what_was_destroyed_since_its_backup(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    store: CheckpointStore,
    story: Story,
    api: Api,
) -> None:
    tenant = story.scratch.ref
    backup = await _backup(settings, backups, objects, log, story, BEFORE)
    hold = await _hold(story, story.held, "诉讼保全")
    await story.destroy(objects)
    assert await objects.stat(story.gone_file) is None
    records = await _records(tenant)
    assert len(records) == 3
    await write_checkpoint(tenant, store)  # vouches for the purge.destroy events

    report = await restore_backup(settings, backups, objects, tenant, backup, log, keep_days=7)

    live = await registry(tenant)
    assert live.schema_name != tenant.schema_name
    restored = _in(story.scratch, live)
    # What the purge destroyed stays destroyed; the rest is the backup's.
    assert not await restored.exists("customer", story.gone)
    assert not await restored.exists("communication", story.old_call)
    assert not await restored.exists("share_request", story.share)
    for table, kept in (
        ("customer", story.held),
        ("customer", story.kept),
        ("communication", story.recent_call),
    ):
        assert await restored.exists(table, kept), table
    assert await restored.value("SELECT count(*) FROM attachment") == 1
    assert await objects.stat(story.gone_file) is None  # not put back
    assert await objects.stat(story.held_file) is not None
    assert await restored.value("SELECT count(*) FROM retention_object_removal") == 0
    # The records are all there, unchanged, numbered on, and still match their events.
    assert await _records(live) == records
    assert await _intact(live, records) == [True, True, True]
    next_id = await restored.value(
        "SELECT nextval(pg_get_serial_sequence('destruction_record', 'id'))"
    )
    assert next_id == records[-1]["id"] + 1
    # The hold placed after the backup holds.
    holds = await restored.sql(
        "SELECT id, released_at FROM legal_hold WHERE customer_id = $1", story.held
    )
    assert [tuple(row) for row in holds] == [(hold, None)]
    # The chain verifies against the checkpoint written before the restore.
    chain = await verify_tenant(live, store)
    assert chain.ok, chain.broken
    # The restore's event says what it destroyed again and by which records — no ids.
    details, customers = await _restore_event(live)
    assert details["destroyedAgain"] == {"customer": 1, "communication": 1, "share_request": 1}
    assert details["destroyedAgainBy"] == [record["id"] for record in records]
    assert details["filesKeptOut"] == 1
    assert details["destroyedAgainRows"]["attachment"] == 1
    assert details["retentionCarried"] == {
        "destructionRecords": 3,
        "legalHoldsPlaced": 1,
        "legalHoldsReleased": 0,
        "legalHoldsWithoutCustomer": 0,
        "objectRemovals": 0,
    }
    for destroyed in (story.gone, story.old_call, story.share):
        assert str(destroyed) not in orjson.dumps(details).decode()
    assert customers == b""
    assert report.destroyed_again == details["destroyedAgain"] and report.files_kept_out == 1
    assert await restored.value("SELECT count(*) FROM destruction_record") == 3  # none new

    # Through the API: the customer is gone for the admin, and the auditor still learns
    # from its id when and that it was destroyed; a salesperson may not read records.
    names = (await api.post(live.slug, story.scratch.tokens["admin"], CUSTOMERS)).ok()
    ids = {edge["node"]["id"] for edge in names["customers"]["edges"]}
    assert str(story.held) in ids and str(story.gone) not in ids
    found = await api.post(
        live.slug, story.scratch.tokens["auditor"], RECORDS, {"filter": {"forId": str(story.gone)}}
    )
    (record,) = found.ok()["destructionRecords"]
    assert record["recordType"] == "customer" and record["intact"] is True
    refused = await api.post(live.slug, story.scratch.tokens["sales"], RECORDS)
    assert refused.codes == ["FORBIDDEN"]

    # A retention run after the restore finds nothing of it to destroy again.
    again = await restored.run(objects, at=story.start + PAST_GRACE)
    assert again.destructions == []


async def test_a_backup_taken_after_the_purge_has_nothing_to_destroy_again(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    store: CheckpointStore,
    story: Story,
) -> None:
    tenant = story.scratch.ref
    await story.destroy(objects)
    records = await _records(tenant)
    backup = await _backup(settings, backups, objects, log, story, AFTER)
    await write_checkpoint(tenant, store)

    report = await restore_backup(settings, backups, objects, tenant, backup, log, keep_days=7)

    live = await registry(tenant)
    details, _ = await _restore_event(live)
    assert details["destroyedAgain"] == NOTHING and details["destroyedAgainBy"] == []
    assert details["retentionCarried"]["destructionRecords"] == 0
    assert report.destroyed_again == NOTHING and report.files_kept_out == 0
    assert await _records(live) == records
    assert await _intact(live, records) == [True, True, True]
    assert not await _in(story.scratch, live).exists("customer", story.gone)
    assert await objects.stat(story.gone_file) is None
    assert (await verify_tenant(live, store)).ok


async def test_a_hold_released_since_the_backup_does_not_stop_destroying_again(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    story: Story,
) -> None:
    tenant = story.scratch.ref
    old_hold = await _hold(story, story.gone, "旧诉讼保全")
    first_on_held = await _hold(story, story.held, "第一次保全")
    backup = await _backup(settings, backups, objects, log, story, BEFORE)
    # Since the backup: the hold on `gone` is released (and goes with it when it is
    # destroyed); `held`'s first hold is released and a second one placed.
    await _release(story, old_hold)
    await _release(story, first_on_held)
    second_on_held = await _hold(story, story.held, "第二次保全")
    await story.destroy(objects)
    assert await story.scratch.value("SELECT count(*) FROM legal_hold WHERE id = $1", old_hold) == 0

    report = await restore_backup(settings, backups, objects, tenant, backup, log, keep_days=7)

    restored = _in(story.scratch, await registry(tenant))
    assert report.destroyed_again["customer"] == 1
    assert not await restored.exists("customer", story.gone)
    assert (
        await restored.value("SELECT count(*) FROM legal_hold WHERE customer_id = $1", story.gone)
        == 0
    )
    holds = await restored.sql(
        "SELECT id, released_at IS NOT NULL AS released FROM legal_hold WHERE customer_id = $1"
        " ORDER BY id",
        story.held,
    )
    assert [tuple(row) for row in holds] == [(first_on_held, True), (second_on_held, False)]
    details, _ = await _restore_event(restored.ref)
    assert details["retentionCarried"]["legalHoldsReleased"] == 1
    assert details["retentionCarried"]["legalHoldsPlaced"] == 1
    assert details["destroyedAgainRows"]["legal_hold"] == 1
    # The database still refuses to delete a customer under an active hold.
    with pytest.raises(Exception, match="legal hold"):
        await restored.sql("DELETE FROM customer WHERE id = $1", story.held)


async def test_a_copy_restored_beside_the_live_tenant_has_nothing_destroyed_either(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    story: Story,
    slugs: Callable[[], str],
) -> None:
    tenant = story.scratch.ref
    backup = await _backup(settings, backups, objects, log, story, BEFORE)
    await story.destroy(objects)
    records = await _records(tenant)
    copy_slug = slugs()

    report: RestoreReport = await restore_as_new(
        settings, backups, objects, tenant, backup, copy_slug, log
    )

    copy = await find_tenant(copy_slug)
    assert copy is not None
    copied = _in(story.scratch, copy)
    assert report.destroyed_again == {"customer": 1, "communication": 1, "share_request": 1}
    assert not await copied.exists("customer", story.gone)
    assert not await copied.exists("communication", story.old_call)
    assert not await copied.exists("share_request", story.share)
    assert await copied.exists("customer", story.held)
    assert await objects.stat(story.gone_file) is None
    # The records stay the live tenant's: the copy has the backup's (none) and queues
    # nothing (the files are the live tenant's to remove).
    assert await copied.value("SELECT count(*) FROM destruction_record") == 0
    assert await copied.value("SELECT count(*) FROM retention_object_removal") == 0
    details, _ = await _restore_event(copy)
    assert details["source"] == tenant.slug
    assert details["destroyedAgainBy"] == [record["id"] for record in records]
    # The live tenant is as it was.
    assert await find_tenant(tenant.slug) == tenant
    assert await _records(tenant) == records


async def test_postgresql_hashes_ids_as_the_records_do(settings: Settings, story: Story) -> None:
    keys = HashedIds.under(settings.secret_key)
    hashed = await story.scratch.value(
        f"SELECT {HashedIds.sql('$1::uuid', '$2', '$3')}", story.gone, keys.inner, keys.outer
    )
    assert hashed == subject_hash(settings.secret_key, story.gone)


async def test_a_record_edited_since_the_backup_comes_back_as_it_was_and_is_named(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    story: Story,
) -> None:
    tenant = story.scratch.ref
    await story.destroy(objects)
    records = await _records(tenant)
    backup = await _backup(settings, backups, objects, log, story, AFTER)
    trigger = "TRIGGER destruction_record_append_only"
    await story.scratch.sql(f"ALTER TABLE destruction_record DISABLE {trigger}")
    await story.scratch.sql(
        "UPDATE destruction_record SET reason = 'nothing happened' WHERE id = $1",
        records[0]["id"],
    )
    await story.scratch.sql(f"ALTER TABLE destruction_record ENABLE {trigger}")
    assert (await _intact(tenant, await _records(tenant)))[0] is False

    await restore_backup(settings, backups, objects, tenant, backup, log, keep_days=7)

    live = await registry(tenant)
    assert await _records(live) == records
    assert await _intact(live, records) == [True, True, True]
    details, _ = await _restore_event(live)
    assert details["retentionCarried"]["differingDestructionRecords"] == [records[0]["id"]]


async def test_a_hold_whose_number_the_backup_gave_another_keeps_its_customer(
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
    story: Story,
) -> None:
    """(A number handed out twice: the live schema came from a restore that did not
    carry holds.)"""
    tenant = story.scratch.ref
    first = await _hold(story, story.held, "第一次保全")
    backup = await _backup(settings, backups, objects, log, story, BEFORE)
    await story.scratch.sql("DELETE FROM legal_hold WHERE id = $1", first)
    await story.scratch.sql(
        "INSERT INTO legal_hold (id, customer_id, reason, placed_by) VALUES ($1, $2, '另案', $3)",
        first,
        story.kept,
        story.scratch.id_of("admin"),
    )

    await restore_backup(settings, backups, objects, tenant, backup, log, keep_days=7)

    restored = _in(story.scratch, await registry(tenant))
    holds = await restored.sql(
        "SELECT id, customer_id FROM legal_hold WHERE released_at IS NULL ORDER BY id"
    )
    assert [tuple(row) for row in holds] == [(first, story.held), (first + 1, story.kept)]
    assert (
        await restored.value("SELECT nextval(pg_get_serial_sequence('legal_hold', 'id'))")
        == first + 2
    )


async def test_a_failure_destroying_again_leaves_the_tenant_untouched(story: Story) -> None:
    tenant = story.scratch.ref
    backup = await take_backup(tenant)
    before = await checksums(tenant)

    async def failing() -> dict[str, object]:
        await raw_connection().execute("DELETE FROM customer")
        raise RuntimeError("S3 is down")

    with pytest.raises(RuntimeError, match="S3 is down"):
        await restore(tenant, backup.snapshot, backup.read, keep_days=7, reapply=failing)

    await assert_untouched(tenant, before)
