"""The order a restore loads a schema's tables in: every table after the tables its
foreign keys point to.

A table that refers to itself (a department's parent, a customer merged into another)
loads in one ``COPY`` whatever the order of its rows: the checks of a non-deferrable
foreign key run at the end of the statement. Any other cycle could not be loaded one
table at a time, so it is refused by name — a migration that adds one fails the test
that walks the latest schema (tests/backups/test_ordering.py) before it ships.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from dangan.tenants.restoring import RestoreError
from dangan.tenants.scope import TenantSession

# Each table of the current schema (as the snapshot reads them) with the other tables
# of the schema its foreign keys point to.
_TABLES_AND_PARENTS = (
    "SELECT c.relname AS name, coalesce(array_agg(DISTINCT p.relname)"
    "  FILTER (WHERE p.oid IS NOT NULL AND p.oid <> c.oid), '{}') AS parents"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'"
    " LEFT JOIN pg_class p ON p.oid = k.confrelid AND p.relnamespace = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " GROUP BY c.relname"
)


async def schema_tables(conn: TenantSession) -> dict[str, set[str]]:
    """The tables of the open tenant transaction's schema → the tables they refer to."""
    return {row["name"]: set(row["parents"]) for row in await conn.fetch(_TABLES_AND_PARENTS)}


def load_order(parents: Mapping[str, set[str]]) -> list[str]:
    """Every table after its parents (self-references ignored), ties by name; a cycle
    raises :class:`RestoreError` naming the tables in it or behind it."""
    waiting = {table: (refs & set(parents)) - {table} for table, refs in parents.items()}
    children: dict[str, list[str]] = {table: [] for table in parents}
    for table, refs in waiting.items():
        for parent in refs:
            children[parent].append(table)
    ready = [table for table, refs in waiting.items() if not refs]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        table = heapq.heappop(ready)
        order.append(table)
        for child in children[table]:
            waiting[child].discard(table)
            if not waiting[child]:
                heapq.heappush(ready, child)
    if len(order) < len(parents):
        stuck = sorted(set(parents) - set(order))
        raise RestoreError(
            "tables " + ", ".join(stuck) + " are in (or behind) a cycle of foreign keys:"
            " they cannot be loaded one table at a time"
        )
    return order
