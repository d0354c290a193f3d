"""What a restore carries over from the schema it replaces so that retention is not
rolled back: the destruction records, the legal holds, and the files still to remove.

A restore brings records back to the backup's moment. Destructions are the one change
it must not undo: a destroyed customer does not come back, and the record that says it
was destroyed (销毁须登记) is not lost. So, in the swap's transaction, after the audit
trail (:mod:`dangan.tenants.carrying`, which their ``audit_seq`` values refer to):

- **destruction records** the replaced schema holds and the restored one does not (the
  table is append-only and numbered by one sequence, so the restored schema's are those
  the replaced one had at the backup) are appended, unchanged, and the sequence moves
  past them. A record both hold under one id but with different content (edited by hand
  after the backup, the trigger switched off) keeps the restored, earlier content; the
  swap reports its id.
- **legal holds** placed after the backup are added and those released after it are
  released, where their customer is in the restored schema (a hold never goes missing
  while its customer is there); a hold on a customer made after the backup cannot be
  kept, and is counted. A hold keeps its id (one handed out again by an earlier restore
  gets a new one).
- **files still to remove** (``retention_object_removal``) of the records carried.

The caller then deletes again what the carried records say was destroyed (the retention
service, through ``swap_in``'s ``reapply``: this module knows no keys). A table either
schema lacks is not carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from dangan.tenants.carrying import present_tables, shared_columns
from dangan.tenants.names import quote_ident
from dangan.tenants.scope import TenantRef, tenant_part

RETENTION_CARRIED = ("destruction_record", "legal_hold", "retention_object_removal")
# The same hold in both schemas: the same number, customer and time placed.
_SAME_HOLD = "n.id = o.id AND n.customer_id = o.customer_id AND n.placed_at = o.placed_at"


@dataclass(frozen=True)
class CarriedRetention:
    destruction_records: list[int] = field(default_factory=list)
    differing_records: list[int] = field(default_factory=list)  # the restored one's kept
    legal_holds_placed: int = 0
    legal_holds_released: int = 0
    legal_holds_without_customer: int = 0
    object_removals: int = 0

    def details(self) -> dict[str, Any]:
        """For the ``backup.restore`` event."""
        found: dict[str, Any] = {
            "destructionRecords": len(self.destruction_records),
            "legalHoldsPlaced": self.legal_holds_placed,
            "legalHoldsReleased": self.legal_holds_released,
            "legalHoldsWithoutCustomer": self.legal_holds_without_customer,
            "objectRemovals": self.object_removals,
        }
        if self.differing_records:
            found["differingDestructionRecords"] = self.differing_records
        return found


def _in(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


async def carry_retention(
    conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef
) -> CarriedRetention:
    """Carry destruction records, legal holds and file removals from ``replaced``'s
    schema into ``restored``'s (see the module's docstring), as the tenant role, in the
    caller's transaction."""
    tables = list(RETENTION_CARRIED)
    async with tenant_part(conn, restored):
        both = await present_tables(conn, replaced.schema_name, tables) & await present_tables(
            conn, restored.schema_name, tables
        )
        records: list[int] = []
        differing: list[int] = []
        if "destruction_record" in both:
            records, differing = await _records(conn, replaced, restored)
        placed = released = homeless = 0
        if "legal_hold" in both:
            placed, released, homeless = await _holds(conn, replaced, restored)
        removals = 0
        if {"destruction_record", "retention_object_removal"} <= both:
            removals = await _removals(conn, replaced, restored)
    return CarriedRetention(records, differing, placed, released, homeless, removals)


async def _records(
    conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef
) -> tuple[list[int], list[int]]:
    old = _in(replaced.schema_name, "destruction_record")
    new = _in(restored.schema_name, "destruction_record")
    columns = await shared_columns(conn, replaced, restored, "destruction_record")
    listed = ", ".join(columns)
    theirs = ", ".join(f"o.{c}" for c in columns)
    ours = ", ".join(f"n.{c}" for c in columns)
    differing = await conn.execute_query_dict(
        f"SELECT n.id FROM {new} n JOIN {old} o ON o.id = n.id"
        f" WHERE ({ours}) IS DISTINCT FROM ({theirs}) ORDER BY n.id"
    )
    appended = await conn.execute_query_dict(
        f"INSERT INTO {new} ({listed}) SELECT {theirs} FROM {old} o"
        f" WHERE NOT EXISTS (SELECT 1 FROM {new} n WHERE n.id = o.id) ORDER BY o.id"
        " RETURNING id"
    )
    await _move_sequence(conn, replaced, restored, "destruction_record")
    return sorted(row["id"] for row in appended), [row["id"] for row in differing]


async def _holds(
    conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef
) -> tuple[int, int, int]:
    old = _in(replaced.schema_name, "legal_hold")
    new = _in(restored.schema_name, "legal_hold")
    customers = _in(restored.schema_name, "customer")
    # Released first: a customer's new hold may follow the release of its old one.
    released = await conn.execute_query_dict(
        f"UPDATE {new} n SET released_by = o.released_by, released_at = o.released_at,"
        f" release_reason = o.release_reason FROM {old} o"
        f" WHERE {_SAME_HOLD} AND n.released_at IS NULL AND o.released_at IS NOT NULL"
        " RETURNING n.id"
    )
    sequence = await _move_sequence(conn, replaced, restored, "legal_hold")
    columns = await shared_columns(conn, replaced, restored, "legal_hold")
    picked = ", ".join(
        f"CASE WHEN EXISTS (SELECT 1 FROM {new} x WHERE x.id = o.id)"
        f" THEN nextval('{sequence}'::regclass) ELSE o.id END"
        if column == quote_ident("id")
        else f"o.{column}"
        for column in columns
    )
    missing = f"NOT EXISTS (SELECT 1 FROM {new} n WHERE {_SAME_HOLD})"
    customer = f"EXISTS (SELECT 1 FROM {customers} c WHERE c.id = o.customer_id)"
    homeless = await conn.execute_query_dict(
        f"SELECT count(*) AS n FROM {old} o WHERE {missing} AND NOT {customer}"
    )
    placed = await conn.execute_query_dict(
        f"INSERT INTO {new} ({', '.join(columns)}) SELECT {picked} FROM {old} o"
        f" WHERE {missing} AND {customer} ORDER BY o.id RETURNING id"
    )
    return len(placed), len(released), homeless[0]["n"]


async def _removals(conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef) -> int:
    old = _in(replaced.schema_name, "retention_object_removal")
    new = _in(restored.schema_name, "retention_object_removal")
    records = _in(restored.schema_name, "destruction_record")
    listed = ", ".join(await shared_columns(conn, replaced, restored, "retention_object_removal"))
    carried = await conn.execute_query_dict(
        f"INSERT INTO {new} ({listed}) SELECT {listed} FROM {old} o"
        f" WHERE EXISTS (SELECT 1 FROM {records} d WHERE d.id = o.record_id)"
        " ON CONFLICT (object_key) DO NOTHING RETURNING object_key"
    )
    return len(carried)


async def _move_sequence(
    conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef, table: str
) -> str:
    """Set the restored ``table``'s id sequence to hand out nothing either schema has
    handed out; returns the sequence's (qualified) name."""
    found: list[tuple[str, int]] = []
    for schema in (replaced.schema_name, restored.schema_name):
        rows = await conn.execute_query_dict(
            "SELECT pg_get_serial_sequence($1, 'id') AS seq", [_in(schema, table)]
        )
        sequence = rows[0]["seq"]
        state = await conn.execute_query_dict(f"SELECT last_value, is_called FROM {sequence}")
        found.append((sequence, state[0]["last_value"] + int(state[0]["is_called"])))
    sequence = found[1][0]
    await conn.execute_query(
        "SELECT setval($1::regclass, $2, false)", [sequence, max(n for _, n in found)]
    )
    return sequence
