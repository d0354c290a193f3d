"""Restoring a backup into the database: load it into a fresh schema, verify it against
its manifest, migrate it forward, then swap it in (DESIGN.md, "Backups: why not
pg_dump"). Where the bytes come from — S3, decrypted — is the caller's: a restore is
given the backup's :class:`~dangan.backups.snapshot.Snapshot` as its manifest recorded
it (schema version; per table rows, bytes and SHA-256; each sequence's position) and
``read_table``, which streams one table's ``COPY`` text bytes.

A load is one transaction, as the tenant's role, in a schema at the backup's version
(:func:`dangan.tenants.restoring.create_scratch`, or a new tenant's):

1. the schema's tables must be exactly the backup's (one missing or unknown: refused);
2. the rows the migrations seeded are deleted (``DELETE`` of the tables that have any,
   children first — not ``TRUNCATE``, which an append-only table may refuse), so every
   row, ``schema_migration``'s included, comes from the backup;
3. each table is read with ``COPY … FROM STDIN``, parents before children
   (:mod:`dangan.backups.ordering`), counted and hashed as it streams in; a table whose
   rows, bytes or SHA-256 differ from the manifest stops the load, and so does one
   holding other rows than those it was sent (``count(*)``);
4. every sequence is set to its recorded position (``setval``), so no id is handed out
   twice; the audit chain numbers itself from ``audit_head``, which is a table;
5. the schema is migrated forward to the latest version if the backup is older.

A restore then swaps the schema in (:func:`dangan.tenants.restoring.swap_in`), carrying
the audit trail and the destruction records over from the schema it replaces rather
than rolling them back, and deleting again, through the caller's ``reapply``, what those
records say was destroyed.

Any failure rolls the load back and drops the scratch schema; :class:`RestoreError` says
what was wrong (an error of ``read_table``, e.g. a backup that does not decrypt, is
raised as it is). Triggers fire on ``COPY`` like on ``INSERT``: none of the tenant
schema's rewrites a row as it is inserted, and one that did would restore rows other
than the backup's.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import structlog
from tortoise.transactions import in_transaction

from dangan.backups.ordering import load_order, schema_tables
from dangan.backups.snapshot import Snapshot, TableCopy, TableSink, schema_relations
from dangan.tenants.migrations import apply_tenant_migration
from dangan.tenants.names import quote_ident
from dangan.tenants.provisioning import activate_tenant, provision_tenant
from dangan.tenants.restoring import (
    RESTORE_ACTION,
    Reapply,
    Record,
    RestoreError,
    RetiredSchema,
    check_scratch,
    checked_version,
    create_scratch,
    drop_scratch,
    migrate_schema_forward,
    migrations_up_to,
    swap_in,
)
from dangan.tenants.scope import (
    TenantRef,
    TenantSession,
    raw_connection,
    tenant_part,
    tenant_transaction,
)
from dangan.tenants.versions import TENANT_MIGRATIONS

ReadTable = Callable[[str], AsyncIterable[bytes]]
OnTable = Callable[[TableCopy], Awaitable[None]]
log = structlog.get_logger("dangan.restore")

__all__ = [
    "Loaded",
    "ReadTable",
    "RestoreError",
    "Restored",
    "drill",
    "load",
    "load_scratch",
    "restore",
    "restore_as",
]


@dataclass(frozen=True)
class Loaded:
    """A backup loaded and verified: where, from which version to which, and each table
    as read (equal to the manifest's)."""

    schema: TenantRef
    from_version: int
    to_version: int
    tables: list[TableCopy]
    sequences: int

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)


@dataclass(frozen=True)
class Restored:
    loaded: Loaded
    retired: RetiredSchema


async def load(
    scratch: TenantRef, backup: Snapshot, read_table: ReadTable, on_table: OnTable | None = None
) -> Loaded:
    """Load ``backup`` into ``scratch`` (from :func:`create_scratch` at the backup's
    version), verify it and migrate it to the latest version; on any failure the scratch
    schema is dropped."""
    await check_scratch(scratch)
    try:
        async with tenant_transaction(scratch) as conn:
            copies = await _fill(backup, read_table, on_table)
            version = await migrate_schema_forward(conn, scratch)
    except BaseException:
        await _discard(scratch)
        raise
    return Loaded(
        replace(scratch, schema_version=version),
        scratch.schema_version,
        version,
        copies,
        len(backup.sequences),
    )


async def load_scratch(
    tenant: TenantRef, backup: Snapshot, read_table: ReadTable, on_table: OnTable | None = None
) -> Loaded:
    """A scratch schema of ``tenant`` at the backup's version, loaded and verified."""
    scratch = await create_scratch(tenant, checked_version(backup.schema_version))
    return await load(scratch, backup, read_table, on_table)


async def drill(
    tenant: TenantRef, backup: Snapshot, read_table: ReadTable, on_table: OnTable | None = None
) -> Loaded:
    """The restore drill: load ``backup`` into a scratch schema and verify it, then drop
    it. The tenant is not touched; a backup that would not restore raises as a restore
    would."""
    loaded = await load_scratch(tenant, backup, read_table, on_table)
    await drop_scratch(loaded.schema)
    return loaded


async def restore(
    tenant: TenantRef,
    backup: Snapshot,
    read_table: ReadTable,
    *,
    keep_days: int,
    reason: str = "restore",
    record: Record | None = None,
    on_table: OnTable | None = None,
    reapply: Reapply | None = None,
) -> Restored:
    """Restore ``backup`` over ``tenant``: load and verify it in a scratch schema, then
    swap it in (:func:`swap_in`: the audit trail and destruction records carried over,
    ``reapply`` run in the restored schema, the replaced schema kept ``keep_days``,
    ``record`` given ``backup.restore``). Nothing of the tenant changes unless all of it
    succeeds."""
    loaded = await load_scratch(tenant, backup, read_table, on_table)
    try:
        retired = await swap_in(
            tenant,
            loaded.schema,
            keep_days,
            reason=reason,
            record=record,
            details=_summary(loaded),
            reapply=reapply,
        )
    except BaseException:
        await _discard(loaded.schema)
        raise
    return Restored(loaded, retired)


async def restore_as(
    slug: str,
    name: str,
    backup: Snapshot,
    read_table: ReadTable,
    *,
    record: Record | None = None,
    on_table: OnTable | None = None,
    reapply: Reapply | None = None,
) -> Loaded:
    """Restore ``backup`` into a new tenant ``slug`` (registry row, role, schema), to
    look at it beside the live one; ``reapply`` runs in it before ``record`` is given
    ``backup.restore``; all of it in one transaction, so a failure leaves no tenant.
    Nobody is a member of the new tenant (memberships and partner apps are the
    platform's, not the backup's; the backup's ``member`` rows only keep its records
    consistent): ``dangan user create --tenant <slug>`` lets someone in."""
    version = checked_version(backup.schema_version)
    async with in_transaction() as conn:
        tenant = await provision_tenant(conn, slug, name, migrations_up_to(version))
        async with tenant_part(conn, tenant):
            copies = await _fill(backup, read_table, on_table)
        for migration in TENANT_MIGRATIONS:
            if migration.version > version:
                await apply_tenant_migration(conn, tenant, migration)
        tenant = await activate_tenant(conn, tenant)
        loaded = Loaded(
            tenant, version, TENANT_MIGRATIONS[-1].version, copies, len(backup.sequences)
        )
        reapplied: Mapping[str, Any] = {}
        if reapply is not None:
            async with tenant_part(conn, tenant):
                reapplied = await reapply()
        if record is not None:
            async with tenant_part(conn, tenant):
                await record(
                    RESTORE_ACTION,
                    {**_summary(loaded), "schema": tenant.schema_name, **reapplied},
                )
    return loaded


async def _discard(scratch: TenantRef) -> None:
    """Drop the scratch schema of a failed restore; if even that fails, the failure
    that got here is the one to raise, and :func:`drop_retired` drops it later."""
    try:
        await drop_scratch(scratch)
    except Exception:
        log.exception("could not drop a failed restore's schema", schema=scratch.schema_name)


def _summary(loaded: Loaded) -> dict[str, object]:
    return {
        "fromVersion": loaded.from_version,
        "toVersion": loaded.to_version,
        "tables": len(loaded.tables),
        "rows": loaded.rows,
    }


async def _fill(
    backup: Snapshot, read_table: ReadTable, on_table: OnTable | None
) -> list[TableCopy]:
    """Steps 1–4 of the module's description, in the open tenant transaction."""
    conn = raw_connection()
    parents = await schema_tables(conn)
    expected = {copy.table: copy for copy in backup.tables}
    _check_same("table", set(expected), set(parents))
    sequences = set((await schema_relations(conn))[1])
    _check_same("sequence", set(backup.sequences), sequences)
    order = load_order(parents)
    for table in reversed(order):
        if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {quote_ident(table)})"):
            await conn.execute(f"DELETE FROM {quote_ident(table)}")
    copies = []
    for table in order:
        copy = await _copy_in(conn, expected[table], read_table(table))
        copies.append(copy)
        if on_table is not None:
            await on_table(copy)
    for copy in copies:
        held = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(copy.table)}")
        if held != copy.rows:
            raise RestoreError(f"table {copy.table} holds {held} rows after loading {copy.rows}")
    for name, (last_value, is_called) in sorted(backup.sequences.items()):
        await conn.fetchval(
            "SELECT setval($1::regclass, $2, $3)", quote_ident(name), last_value, is_called
        )
    return sorted(copies, key=lambda copy: copy.table)


async def _copy_in(
    conn: TenantSession, expected: TableCopy, chunks: AsyncIterable[bytes]
) -> TableCopy:
    sink = TableSink(expected.table)

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            await sink.write(chunk)
            yield chunk

    try:
        status = await conn.copy_table_in(expected.table, counted())
    except asyncpg.PostgresError as exc:
        # PostgreSQL's message quotes the offending value: it stays in the cause, for
        # the logs, not in what an operator's screen or a job's status shows.
        line = re.search(r"line (\d+)", getattr(exc, "context", None) or "")
        at = f" at row {line[1]}" if line else ""
        raise RestoreError(
            f"table {expected.table} does not load{at}: {type(exc).__name__}"
            f" (SQLSTATE {exc.sqlstate})"
        ) from exc
    got = await sink.close()
    facts = (got.rows, got.bytes, got.sha256)
    if facts != (expected.rows, expected.bytes, expected.sha256) or status != f"COPY {got.rows}":
        raise RestoreError(
            f"table {expected.table} does not match the backup's manifest:"
            f" {expected.rows} rows, {expected.bytes} bytes, SHA-256 {expected.sha256[:16]}…"
            f" expected; {got.rows} rows, {got.bytes} bytes, SHA-256 {got.sha256[:16]}… read"
        )
    return got


def _check_same(kind: str, in_backup: set[str], in_schema: set[str]) -> None:
    """The backup's tables (or sequences) are those of a schema at its version."""
    if lacking := sorted(in_schema - in_backup):
        raise RestoreError(
            f"the backup has nothing for {kind} {', '.join(lacking)}: it is not complete"
        )
    if unknown := sorted(in_backup - in_schema):
        raise RestoreError(
            f"the backup holds {kind} {', '.join(unknown)}, unknown at its schema version"
            " (a damaged manifest, or not a backup of this product)"
        )
