"""Restoring a backup into the database: every table comes back byte for byte, ids and
the audit chain continue where the backup left them, an older backup is migrated
forward, and a backup that does not match its manifest changes nothing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from dangan.alarms.rules import RULE_SPECS
from dangan.audit.actions import record_action
from dangan.audit.checkpoints import CheckpointStore, write_checkpoint
from dangan.audit.verify import verify_tenant
from dangan.backups.loading import RestoreError, drill, load, restore
from dangan.backups.sealing import SealError
from dangan.backups.snapshot import Snapshot, TableCopy
from dangan.settings import Settings
from dangan.tenants import provisioning
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.restoring import create_scratch, drop_scratch
from dangan.tenants.scope import run_in_tenant
from dangan.tenants.versions import LATEST_TENANT_VERSION, TENANT_MIGRATIONS
from tests.backups.filled import CUSTOMERS, Filled, add_people
from tests.backups.restores import (
    assert_untouched,
    checksums,
    in_tenant,
    platform,
    registry,
    schemas_of,
    take_backup,
)
from tests.support.world import World


async def test_a_restore_brings_back_every_table_and_sequence(
    filled: Filled, world: World, settings: Settings, store: CheckpointStore
) -> None:
    tenant = filled.ref
    assert await write_checkpoint(tenant, store) is not None  # the chain is vouched for
    backup = await take_backup(tenant)
    tables = {copy.table: copy for copy in backup.snapshot.tables}
    assert sum(1 for copy in tables.values() if copy.rows) >= 25, "most tables hold rows"
    assert backup.snapshot.sequences["customer_change_id_seq"][0] >= CUSTOMERS
    alpha_before = await checksums(world["alpha"].ref)

    # After the backup: a customer goes, a table is dropped by hand (one of the alarm
    # tables: so the audit trail is not carried over, see test_carrying), ids are drawn.
    await in_tenant(tenant, "DELETE FROM customer WHERE id = $1", filled.customers[1])
    await in_tenant(tenant, "DROP TABLE alert_delivery")
    drawn = await in_tenant(tenant, "SELECT nextval('customer_change_id_seq')")

    restored = await restore(tenant, backup.snapshot, backup.read, keep_days=7)

    live = await registry(tenant)
    assert live.schema_name == restored.loaded.schema.schema_name != tenant.schema_name
    assert live.schema_version == LATEST_TENANT_VERSION
    assert restored.retired.schema_name == tenant.schema_name
    assert await checksums(live) == {t: (c.rows, c.sha256) for t, c in tables.items()}
    assert restored.loaded.tables == sorted(tables.values(), key=lambda copy: copy.table)
    assert restored.loaded.from_version == restored.loaded.to_version == LATEST_TENANT_VERSION
    # Sequences continue from the backup's position, whatever was drawn after it.
    after = await take_backup(live)
    assert after.snapshot.sequences == backup.snapshot.sequences
    position, _ = backup.snapshot.sequences["customer_change_id_seq"]
    assert drawn == position + 1
    assert await in_tenant(live, "SELECT nextval('customer_change_id_seq')") == position + 1
    # The audit chain goes on from the backup's head and verifies, checkpoint included.
    head = await in_tenant(live, "SELECT last_seq FROM audit_head")
    assert head == await in_tenant(tenant, "SELECT last_seq FROM audit_head")

    async def append() -> int:
        return await record_action(settings.secret_key, "test.after", origin="cli")

    assert await run_in_tenant(live, append) == head + 1
    report = await verify_tenant(live, store)
    assert report.ok, report.broken
    assert report.checkpoints_checked >= 1
    # The schema it replaced is kept, as it was when swapped out.
    assert await in_tenant(tenant, "SELECT count(*) FROM customer") == CUSTOMERS - 1
    assert sorted(await schemas_of(tenant)) == sorted([tenant.schema_name, live.schema_name])
    # Another tenant is untouched.
    assert await checksums(world["alpha"].ref) == alpha_before


async def test_an_older_backup_is_migrated_forward(
    slugs: Callable[[], str],
    settings: Settings,
    store: CheckpointStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with monkeypatch.context() as patch:  # a tenant of before the audit trail (v6)
        patch.setattr(provisioning, "TENANT_MIGRATIONS", TENANT_MIGRATIONS[:6])
        tenant = await create_tenant(slugs(), "Old Ltd")
    filled = Filled(tenant)
    await add_people(tenant, settings, filled)
    await in_tenant(
        tenant,
        "INSERT INTO customer (kind, name, owner_id) VALUES ('INDIVIDUAL', '旧客户', $1)",
        filled.people["sales"].identity_id,
    )
    backup = await take_backup(tenant)
    assert backup.snapshot.schema_version == 6
    assert "audit_event" not in backup.data and backup.snapshot.sequences

    restored = await restore(tenant, backup.snapshot, backup.read, keep_days=1)

    live = await registry(tenant)
    assert (restored.loaded.from_version, restored.loaded.to_version) == (6, LATEST_TENANT_VERSION)
    assert live.schema_version == LATEST_TENANT_VERSION
    after = await take_backup(live)
    assert after.snapshot.schema_version == LATEST_TENANT_VERSION
    for copy in backup.snapshot.tables:
        if copy.table != "schema_migration":
            assert after.table(copy.table) == backup.table(copy.table), copy.table
    # The backup's own record of versions 1–6 (when each was applied), then the rest.
    assert after.table("schema_migration").startswith(backup.table("schema_migration"))
    versions = await in_tenant(
        live, "SELECT array_agg(version ORDER BY version) FROM schema_migration"
    )
    assert versions == list(range(1, LATEST_TENANT_VERSION + 1))
    # The later versions' tables, with the rows their migrations seed.
    assert await in_tenant(live, "SELECT last_seq FROM audit_head") == 0
    assert await in_tenant(live, "SELECT count(*) FROM alarm_rule") == len(RULE_SPECS)
    assert (await verify_tenant(live, store)).ok


@pytest.mark.parametrize("damage", ["data", "manifest"])
async def test_a_backup_that_does_not_match_its_manifest_changes_nothing(
    filled: Filled, damage: str
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    if damage == "data":  # same length, still valid rows: only the checksum tells
        backup.data["customer"] = backup.table("customer").replace(
            "还原客户0".encode(), "还原客户9".encode()
        )
    else:
        backup.snapshot = replace(
            backup.snapshot,
            tables=[
                replace(copy, rows=copy.rows + 1) if copy.table == "customer" else copy
                for copy in backup.snapshot.tables
            ],
        )
    before = await checksums(tenant)

    with pytest.raises(RestoreError, match="table customer does not match the backup's manifest"):
        await restore(tenant, backup.snapshot, backup.read, keep_days=7)

    await assert_untouched(tenant, before)


def _without_table(snapshot: Snapshot) -> Snapshot:
    return replace(snapshot, tables=[c for c in snapshot.tables if c.table != "alert"])


def _unknown_table(snapshot: Snapshot) -> Snapshot:
    return replace(snapshot, tables=[*snapshot.tables, TableCopy("no_such", 0, 0, EMPTY)])


EMPTY = hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_without_table, "the backup has nothing for table alert: it is not complete"),
        (_unknown_table, "the backup holds table no_such, unknown at its schema version"),
        (
            lambda s: replace(s, sequences={}),
            "the backup has nothing for sequence alert_delivery_id_seq, alert_id_seq,",
        ),
        (
            lambda s: replace(s, sequences={**s.sequences, "no_such_seq": (1, True)}),
            "the backup holds sequence no_such_seq",
        ),
        (
            lambda s: replace(s, schema_version=LATEST_TENANT_VERSION + 1),
            "newer than this Dangan knows",
        ),
        (lambda s: replace(s, schema_version=None), "the backup records no schema version"),
    ],
)
async def test_an_incomplete_or_foreign_backup_is_refused(
    filled: Filled, change: Callable[[Snapshot], Snapshot], message: str
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    before = await checksums(tenant)
    with pytest.raises(RestoreError, match=re.escape(message)):
        await restore(tenant, change(backup.snapshot), backup.read, keep_days=7)
    await assert_untouched(tenant, before)


async def test_rows_that_do_not_load_are_named_by_table_and_row_not_value(
    filled: Filled,
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    rows = backup.table("customer").split(b"\n")
    rows[2] = b"not-a-uuid-4b2f-9c1e-7d8a6f5e4c3b" + rows[2][36:]
    backup.data["customer"] = b"\n".join(rows)
    before = await checksums(tenant)

    with pytest.raises(RestoreError) as info:
        await drill(tenant, backup.snapshot, backup.read)

    assert str(info.value) == (
        "table customer does not load at row 3: InvalidTextRepresentationError (SQLSTATE 22P02)"
    )
    assert "not-a-uuid" not in str(info.value)
    await assert_untouched(tenant, before)


async def test_an_error_reading_the_backup_is_raised_as_it_is(filled: Filled) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    before = await checksums(tenant)

    async def cut_short(table: str) -> AsyncIterator[bytes]:
        async for chunk in backup.read(table):
            yield chunk
            if table == "customer":
                raise SealError("backups/x/customer.copy: frame 2 does not open (cut short?)")

    with pytest.raises(SealError, match="frame 2 does not open"):
        await restore(tenant, backup.snapshot, cut_short, keep_days=7)

    await assert_untouched(tenant, before)  # and the connections are fine after it


async def test_a_drill_verifies_a_backup_and_leaves_nothing(filled: Filled) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    before = await checksums(tenant)
    seen: list[str] = []

    async def progress(copy: TableCopy) -> None:
        seen.append(copy.table)

    loaded = await drill(tenant, backup.snapshot, backup.read, progress)

    assert loaded.tables == sorted(backup.snapshot.tables, key=lambda copy: copy.table)
    assert loaded.rows == sum(copy.rows for copy in backup.snapshot.tables) > 0
    assert loaded.schema.schema_name.startswith(f"t_{tenant.slug}_r")
    # Every table, parents first (customer before the records that point to it).
    assert sorted(seen) == sorted(backup.data)
    assert seen.index("customer") < seen.index("communication")
    await assert_untouched(tenant, before)


async def test_a_load_never_empties_a_schema_in_use(filled: Filled) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    before = await checksums(tenant)
    with pytest.raises(RestoreError, match=f"schema {tenant.schema_name} is in use"):
        await load(tenant, backup.snapshot, backup.read)  # the live schema
    await assert_untouched(tenant, before)

    await restore(tenant, backup.snapshot, backup.read, keep_days=7)
    kept = await checksums(tenant)  # all of it, but the audit head: it moved
    with pytest.raises(RestoreError, match=f"schema {tenant.schema_name} is in use"):
        await load(tenant, backup.snapshot, backup.read)  # now a retired one, kept
    assert await checksums(tenant) == kept == {**before, "audit_head": kept["audit_head"]}
    assert tenant.schema_name in await schemas_of(tenant)


async def test_a_scratch_schema_is_built_at_the_version_asked_apart_from_the_registry(
    filled: Filled,
) -> None:
    tenant = filled.ref
    scratch = await create_scratch(tenant, 6)
    try:
        assert scratch.schema_name.startswith(f"t_{tenant.slug}_r")
        assert (scratch.id, scratch.role_name, scratch.schema_version) == (
            tenant.id,
            tenant.role_name,
            6,
        )
        assert await registry(tenant) == tenant  # still the live schema, at its version
        versions = await in_tenant(
            scratch, "SELECT array_agg(version ORDER BY version) FROM schema_migration"
        )
        assert versions == [1, 2, 3, 4, 5, 6]
        assert await in_tenant(scratch, "SELECT to_regclass('audit_event')") is None
        owners = await platform(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
            scratch.schema_name,
        )
        assert owners == [{"owner": tenant.role_name}]
    finally:
        assert await drop_scratch(scratch)
    assert await schemas_of(tenant) == [tenant.schema_name]
