"""Credentials suspended by alerts until an administrator reinstates them.

The record is the tenant's: an alert with ``suspended`` and no ``reinstated_at``
suspends its actor (a person's access to this tenant, or a partner app's key). Sign-in
reads platform tables before any tenant transaction, so that state is projected into
``public.credential_suspension`` (platform version 3), which authentication joins with
the credential at no extra cost. The projection is written with the app's own role,
never from a tenant transaction: by the evaluation job after each batch (it converges
whatever it finds, so a crash or a race is healed by the next run) and, for a
reinstatement, right after the administrator's request commits.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from dangan.tenants.scope import TenantRef, raw_connection

Actor = tuple[str, int]  # ("user" | "app", id)


async def desired_suspensions() -> dict[Actor, int]:
    """Actor → the first alert suspending them (inside the tenant's transaction)."""
    rows = await raw_connection().fetch(
        "SELECT DISTINCT ON (actor_kind, actor_id) actor_kind, actor_id, id FROM alert"
        " WHERE suspended AND reinstated_at IS NULL ORDER BY actor_kind, actor_id, id"
    )
    return {(row["actor_kind"], row["actor_id"]): row["id"] for row in rows}


async def sync_suspensions(tenant: TenantRef, desired: dict[Actor, int]) -> None:
    """Make the tenant's rows of ``public.credential_suspension`` say ``desired``."""
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "SELECT actor_kind, actor_id, alert_id FROM public.credential_suspension"
            " WHERE tenant_id = $1 FOR UPDATE",
            [tenant.id],
        )
        actual = {(row["actor_kind"], row["actor_id"]): row["alert_id"] for row in rows}
        for kind, ident in actual.keys() - desired.keys():
            await conn.execute_query(
                "DELETE FROM public.credential_suspension"
                " WHERE tenant_id = $1 AND actor_kind = $2 AND actor_id = $3",
                [tenant.id, kind, ident],
            )
        for (kind, ident), alert_id in desired.items():
            if actual.get((kind, ident)) != alert_id:
                await conn.execute_query(
                    "INSERT INTO public.credential_suspension"
                    " (tenant_id, actor_kind, actor_id, alert_id) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (tenant_id, actor_kind, actor_id)"
                    " DO UPDATE SET alert_id = EXCLUDED.alert_id",
                    [tenant.id, kind, ident, alert_id],
                )


async def lift_suspension(tenant: TenantRef, actor: Actor) -> None:
    """End ``actor``'s suspension in this tenant now (after a reinstatement committed)."""
    async with in_transaction() as conn:
        await conn.execute_query(
            "DELETE FROM public.credential_suspension"
            " WHERE tenant_id = $1 AND actor_kind = $2 AND actor_id = $3",
            [tenant.id, actor[0], actor[1]],
        )
