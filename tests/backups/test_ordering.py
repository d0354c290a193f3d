"""Tables load parents first. The latest tenant schema must stay loadable that way: a
migration that adds a cycle of foreign keys (other than a table pointing to itself)
fails here, before it ships."""

from __future__ import annotations

import pytest

from dangan.backups.ordering import load_order, schema_tables
from dangan.tenants.restoring import RestoreError
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import World


async def test_the_latest_schema_loads_parents_first(world: World) -> None:
    async def read() -> dict[str, set[str]]:
        return await schema_tables(raw_connection())

    parents = await run_in_tenant(world["alpha"].ref, read)
    order = load_order(parents)  # raises on a cycle

    assert sorted(order) == sorted(parents)
    position = {table: n for n, table in enumerate(order)}
    for table, refs in parents.items():
        assert table not in refs, "self-references are left out"
        assert all(position[parent] < position[table] for parent in refs), table
    # What the order has to get right, and the self-references it may ignore.
    assert {"member", "department"} <= parents["customer"]
    assert parents["audit_access"] == {"audit_event"}
    assert parents["department"] == set() and parents["share_request"] >= {"partner_app"}


def test_ties_go_by_name_and_unknown_parents_are_ignored() -> None:
    parents = {"b": set(), "a": {"c"}, "c": {"elsewhere"}, "d": {"d"}}
    assert load_order(parents) == ["b", "c", "a", "d"]


def test_a_cycle_is_refused_naming_its_tables() -> None:
    parents = {"a": {"b"}, "b": {"a"}, "c": set(), "d": {"a"}}
    with pytest.raises(RestoreError, match=r"tables a, b, d are in \(or behind\) a cycle"):
        load_order(parents)
