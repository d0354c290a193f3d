"""Removing what a test module added to the shared world (other modules count customers)."""

from __future__ import annotations

from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import TENANTS, World


async def remove_customers(world: World, name_prefix: str) -> None:
    """Delete the customers whose name starts with ``name_prefix`` (their changes go
    with them) in every tenant of the world."""

    async def remove() -> None:
        await raw_connection().execute(
            "DELETE FROM customer WHERE name LIKE $1", name_prefix.replace("%", r"\%") + "%"
        )

    for slug in TENANTS:
        await run_in_tenant(world[slug].ref, remove)


async def remove_classification_values(world: World, codes: list[str]) -> None:
    """Delete dictionary values a test added."""

    async def remove() -> None:
        await raw_connection().execute(
            "DELETE FROM classification_value WHERE NOT builtin AND code = ANY($1::text[])", codes
        )

    for slug in TENANTS:
        await run_in_tenant(world[slug].ref, remove)
