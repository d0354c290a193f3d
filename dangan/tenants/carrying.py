"""What a restore carries over from the schema it replaces instead of rolling it back:
the audit trail, and the alarm state numbered along it.

A restore brings a tenant's records back to the backup's moment; it does not undo
that people read and changed them since. The audit chain is evidence, checkpointed to
S3 every few minutes: rolled back, it would hand its numbers out again with other
hashes, and ``dangan audit verify`` would rightly report the chain rewritten. So the
chain (events, head, retention anchor, the customer index and its progress) and what
refers to its numbers (alerts, their deliveries, the alarm cursor, known addresses —
and the credential suspensions in ``public`` that name those alerts) are copied from
the replaced schema into the restored one in the swap's transaction, with their
sequences; the restore then appends its own event to that chain.

The replaced schema's tables are locked (``EXCLUSIVE``: read, not written) for the
copy, in the order writers take them — alarm tables, then ``audit_head``, then
``audit_event`` — so a request or an alarm job waits for the swap instead of
deadlocking with it. The head itself moves: the replaced schema keeps its events but
no ``audit_head`` row, so a request that began there before the swap and appends its
event after it fails (and is retried against the restored schema) instead of committing
where nobody reads. If the replaced schema lacks one of these tables (dropped by
hand, or a schema of before the alarms), nothing is carried: the backup's own trail
stays, and verify reports what was lost, as it should.

People and partner apps are the platform's (``public.membership``, ``public.api_client``);
the tenant keeps copies (``member``, ``partner_app``) that its records point to, and
every write keeps the two together. The restored copies are the backup's, so the swap
brings them up to the platform's again (:func:`remirror`): someone made a member after
the backup is a member of the restored tenant too. A department made after the backup
is not in the restored tree: such a member's copy has none.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from dangan.tenants.names import quote_ident
from dangan.tenants.scope import TenantRef, tenant_part

# Parents before children, and in the order writers lock them (see above).
CARRIED_OVER = (
    "alert",
    "alert_delivery",
    "alert_platform_delivery",
    "alarm_cursor",
    "alarm_known_address",
    "audit_head",
    "audit_event",
    "audit_access",
    "audit_access_progress",
    "audit_anchor",
)
_PRESENT = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p')"
)
_COLUMNS = (
    "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped"
    " AND a.attgenerated = '' ORDER BY a.attnum"
)
# The sequences that number the carried tables' rows (serial and identity columns).
_SEQUENCES = (
    "SELECT DISTINCT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
    " JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace"
    " WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i') AND n.nspname = $1"
    " AND t.relname = ANY($2::text[]) ORDER BY s.relname"
)


def _qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


async def present_tables(conn: BaseDBAsyncClient, schema: str, tables: list[str]) -> set[str]:
    """Which of ``tables`` ``schema`` has."""
    rows = await conn.execute_query_dict(_PRESENT, [schema, tables])
    return {row["relname"] for row in rows}


async def shared_columns(
    conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef, table: str
) -> list[str]:
    """The columns of ``table`` both schemas have (quoted, in the restored one's order):
    what a copy from one to the other can carry."""
    ours = await conn.execute_query_dict(_COLUMNS, [restored.schema_name, table])
    theirs = await conn.execute_query_dict(_COLUMNS, [replaced.schema_name, table])
    kept = {row["attname"] for row in theirs}
    return [quote_ident(row["attname"]) for row in ours if row["attname"] in kept]


async def lock_carried(conn: BaseDBAsyncClient, replaced: TenantRef) -> bool:
    """Lock :data:`CARRIED_OVER` in ``replaced``'s schema against writers until the
    caller's (the swap's) transaction ends — first, before the registry row, as writers
    take them; False, locking nothing, if the schema lacks one of them."""
    tables = list(CARRIED_OVER)
    async with tenant_part(conn, replaced):
        if len(await present_tables(conn, replaced.schema_name, tables)) < len(tables):
            return False
        await conn.execute_script(
            "LOCK TABLE "
            + ", ".join(_qualified(replaced.schema_name, t) for t in tables)
            + " IN EXCLUSIVE MODE"
        )
    return True


async def copy_carried(conn: BaseDBAsyncClient, replaced: TenantRef, restored: TenantRef) -> None:
    """Replace :data:`CARRIED_OVER` in ``restored``'s schema by ``replaced``'s rows (the
    columns both have) and sequence positions, as the tenant role, in the caller's
    transaction (after :func:`lock_carried`)."""
    old, new = replaced.schema_name, restored.schema_name
    tables = list(CARRIED_OVER)
    async with tenant_part(conn, restored):
        for table in reversed(tables):
            await conn.execute_script(f"DELETE FROM {_qualified(new, table)}")
        for table in tables:
            columns = ", ".join(await shared_columns(conn, replaced, restored, table))
            await conn.execute_script(
                f"INSERT INTO {_qualified(new, table)} ({columns})"
                f" SELECT {columns} FROM {_qualified(old, table)}"
            )
        # The head moves with the chain: the replaced schema keeps every event, but a
        # transaction that began in it before the swap can append no more there (it
        # fails, and its client's retry reaches the restored schema).
        await conn.execute_script(f"DELETE FROM {_qualified(old, 'audit_head')}")
        for row in await conn.execute_query_dict(_SEQUENCES, [old, tables]):
            found = await conn.execute_query_dict(
                f"SELECT last_value, is_called FROM {_qualified(old, row['relname'])}"
            )
            await conn.execute_query(
                "SELECT setval($1::regclass, $2, $3)",
                [_qualified(new, row["relname"]), found[0]["last_value"], found[0]["is_called"]],
            )


async def remirror(conn: BaseDBAsyncClient, tenant: TenantRef) -> None:
    """Bring ``tenant``'s ``member`` and ``partner_app`` rows up to the platform's
    memberships and apps, in the caller's transaction; rows already equal are left as
    they are (a restore of an unchanged tenant changes nothing)."""
    people = await conn.execute_query_dict(
        "SELECT m.identity_id, i.email, i.display_name, m.roles, m.department_id"
        " FROM public.membership m JOIN public.identity i ON i.id = m.identity_id"
        " WHERE m.tenant_id = $1",
        [tenant.id],
    )
    apps = await conn.execute_query_dict(
        "SELECT id, name, scopes, status = 'active' AS active FROM public.api_client"
        " WHERE tenant_id = $1",
        [tenant.id],
    )
    async with tenant_part(conn, tenant):
        for person in people:  # the columns in the order of the statement's parameters
            await conn.execute_query(_MEMBER, list(person.values()))
        for app in apps:
            await conn.execute_query(_PARTNER_APP, list(app.values()))


_MEMBER = (
    "INSERT INTO member (identity_id, email, display_name, roles, department_id)"
    " VALUES ($1, $2, $3, $4, (SELECT id FROM department WHERE id = $5))"
    " ON CONFLICT (identity_id) DO UPDATE SET email = EXCLUDED.email,"
    " display_name = EXCLUDED.display_name, roles = EXCLUDED.roles,"
    " department_id = EXCLUDED.department_id, active = true, updated_at = now()"
    " WHERE (member.email, member.display_name, member.roles, member.department_id,"
    " member.active) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.display_name,"
    " EXCLUDED.roles, EXCLUDED.department_id, true)"
)
_PARTNER_APP = (
    "INSERT INTO partner_app (id, name, scopes, active) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, scopes = EXCLUDED.scopes,"
    " active = EXCLUDED.active, updated_at = now()"
    " WHERE (partner_app.name, partner_app.scopes, partner_app.active)"
    " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.scopes, EXCLUDED.active)"
)
