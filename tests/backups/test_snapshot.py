"""A tenant's snapshot reads every table of its schema, and each table's count and
checksum describe exactly the bytes handed on. (That rows committed meanwhile stay out
is tested with the backup job, whose writers run in transactions of their own.)"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from dangan.backups.snapshot import TableSink, take_snapshot
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.tenants.versions import LATEST_TENANT_VERSION
from tests.support.world import World


class Keeping(TableSink):
    """Keeps the bytes, to compare with what the sink says about them."""

    kept: ClassVar[dict[str, bytes]] = {}

    async def write(self, chunk: bytes) -> None:
        await super().write(chunk)
        Keeping.kept[self.table] = Keeping.kept.get(self.table, b"") + chunk


async def test_every_table_is_read_counted_and_checksummed(world: World) -> None:
    tenant = world["alpha"].ref
    Keeping.kept = {}

    async def keeping(table: str) -> TableSink:
        return Keeping(table)

    snapshot = await take_snapshot(tenant, keeping)

    async def counts() -> dict[str, int]:
        conn = raw_connection()
        return {
            copy.table: await conn.fetchval(f'SELECT count(*) FROM "{copy.table}"')
            for copy in snapshot.tables
        }

    assert snapshot.schema_version == LATEST_TENANT_VERSION
    names = [copy.table for copy in snapshot.tables]
    assert {"customer", "audit_event", "audit_head", "alert", "schema_migration"} <= set(names)
    assert names == sorted(names)
    expected = await run_in_tenant(tenant, counts)
    for copy in snapshot.tables:
        data = Keeping.kept.get(copy.table, b"")
        assert (copy.rows, copy.bytes) == (expected[copy.table], len(data)), copy.table
        assert copy.sha256 == hashlib.sha256(data).hexdigest()
    assert expected["customer"] > 0


async def test_every_sequence_is_recorded_where_it_stands(world: World) -> None:
    tenant = world["alpha"].ref
    snapshot = await take_snapshot(tenant)

    async def read() -> tuple[set[str], dict[str, int], int]:
        conn = raw_connection()
        names = {
            row["relname"]
            for row in await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'S'"
            )
        }
        highest = {
            "department_id_seq": await conn.fetchval("SELECT max(id) FROM department"),
            "customer_change_id_seq": await conn.fetchval("SELECT max(id) FROM customer_change"),
        }
        return names, highest, await conn.fetchval("SELECT count(*) FROM alert_delivery")

    names, highest, deliveries = await run_in_tenant(tenant, read)
    assert set(snapshot.sequences) == names >= {"department_id_seq", "alert_delivery_id_seq"}
    for name, value in highest.items():  # at or past every id the tables hold
        position, drawn = snapshot.sequences[name]
        assert drawn and position >= value, name
    if deliveries == 0:  # never drawn: setval(…, 1, false) hands out 1 next
        assert snapshot.sequences["alert_delivery_id_seq"] == (1, False)


# What the snapshot must list, by a plain scan of pg_class (the snapshot finds the same
# relations through an index, which a scan is not with a thousand tenants).
_BY_SCAN = (
    "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S')"
    " AND NOT c.relispartition ORDER BY c.relname"
)


async def test_it_lists_exactly_the_tables_and_sequences_of_its_own_schema(
    world: World, tenant: TenantRef
) -> None:
    async def add_relations() -> dict[str, list[str]]:
        conn = raw_connection()
        await conn.execute(
            "CREATE TABLE bk_extra (id bigserial PRIMARY KEY, note text);"
            " INSERT INTO bk_extra (note) VALUES ('one'), ('two');"
            " CREATE SEQUENCE bk_counter START 41; SELECT nextval('bk_counter');"
        )
        listed: dict[str, list[str]] = {"r": [], "S": []}
        for row in await conn.fetch(_BY_SCAN):
            listed["S" if row["relkind"] == "S" else "r"].append(row["relname"])
        return listed

    listed = await run_in_tenant(tenant, add_relations)
    other = await take_snapshot(world["beta"].ref)

    snapshot = await take_snapshot(tenant)

    assert [copy.table for copy in snapshot.tables] == listed["r"]
    assert sorted(snapshot.sequences) == listed["S"]
    assert {copy.table: copy.rows for copy in snapshot.tables}["bk_extra"] == 2
    assert snapshot.sequences["bk_counter"] == (41, True)
    assert snapshot.sequences["bk_extra_id_seq"] == (2, True)
    assert "bk_extra" not in {copy.table for copy in other.tables}
    assert not {"bk_counter", "bk_extra_id_seq"} & set(other.sequences)
