"""The schemas of a restore: a scratch schema to load a backup into, the swap that makes
it the tenant's, and the schemas restores leave behind, dropped in time.

A restore never writes into the tenant's live schema. It builds a scratch schema
``t_<slug>_r<yyyymmddhhmmss>`` (UTC, when it was made; at most 59 characters), owned by
the tenant's role and migrated exactly to the backup's version, loads and verifies it
there (:mod:`dangan.backups.loading`), and only then, in one transaction, carries the
audit trail over from the schema it replaces (:mod:`dangan.tenants.carrying`), and the
destruction records, legal holds and files still to remove
(:mod:`dangan.tenants.carrying_retention`), lets the caller delete again what those
records say was destroyed (``reapply``: the keys are the services', not this layer's),
and points the registry (``public.tenant.schema_name``) at it. Nothing derives a tenant's
schema from its slug at request time (requests, jobs and commands read the registry),
so from that commit on everything reads the restored schema. A request that began in
the old one before the swap fails when it records its audit event after it (the chain's
head moved to the restored schema), rather than commit where nobody reads.

The schema swapped out is kept (all but the audit head, which moved), under its own
name, in ``public.retired_schema`` until its ``drop_after``; :func:`drop_retired` drops
it then. A scratch schema a crashed restore left behind (no registry row points to it,
not retired, its name a scratch name of the tenant whose role owns it) is dropped by
:func:`drop_retired` too, once it is older than ``abandoned_after`` (a day by default:
far longer than any load, so a restore in progress is never pulled from under it).
Every drop runs as the tenant's role (the schema's owner) and re-checks, holding the
tenant's registry row, that the registry does not point to the schema.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from dangan.services.errors import DanganError
from dangan.tenants.carrying import copy_carried, lock_carried, remirror
from dangan.tenants.carrying_retention import carry_retention
from dangan.tenants.migrations import apply_schema_migration
from dangan.tenants.names import quote_ident
from dangan.tenants.scope import TenantRef, tenant_part
from dangan.tenants.versions import TENANT_MIGRATIONS, Migration

ABANDONED_SCRATCH_AFTER = timedelta(days=1)
RESTORE_ACTION = "backup.restore"
_STAMP = "%Y%m%d%H%M%S"
# What a service hands its audit record to (dangan.audit.actions.Recorder's shape).
Record = Callable[[str, dict[str, Any]], Awaitable[object]]
# Work a restore does in the restored schema within the swap's (or the new tenant's)
# transaction, in that tenant's scope (``raw_connection()`` reaches it), after what is
# carried over: deleting again what destruction records say was destroyed. What it
# returns goes into the ``backup.restore`` event; if it raises, nothing is swapped.
Reapply = Callable[[], Awaitable[Mapping[str, Any]]]
log = structlog.get_logger("dangan.restore")


class RestoreError(DanganError):
    """A restore that cannot go on; the message says why, for an operator to read."""

    code = "CONFLICT"


@dataclass(frozen=True)
class RetiredSchema:
    tenant_id: int
    schema_name: str
    retired_at: datetime
    drop_after: datetime
    reason: str


def scratch_name(slug: str, at: datetime) -> str:
    return f"t_{slug}_r{at.astimezone(UTC).strftime(_STAMP)}"


def checked_version(version: int | None) -> int:
    """A backup's schema version, if this code can build a schema at it."""
    known = [m.version for m in TENANT_MIGRATIONS]
    if version is None:
        raise RestoreError("the backup records no schema version")
    if version > known[-1]:
        raise RestoreError(
            f"the backup is at schema version {version}, newer than this Dangan knows"
            f" ({known[-1]}): restore it with the release that wrote it, or a later one"
        )
    if version not in known:
        raise RestoreError(f"the backup's schema version {version} is not one this Dangan knows")
    return version


def migrations_up_to(version: int) -> tuple[Migration, ...]:
    """The migrations that build a schema at ``version`` (a backup's)."""
    checked_version(version)
    return tuple(m for m in TENANT_MIGRATIONS if m.version <= version)


async def migrate_schema_forward(conn: BaseDBAsyncClient, schema: TenantRef) -> int:
    """Apply every version after ``schema.schema_version`` to that schema, in the caller's
    transaction, recorded in the schema only; returns the version reached."""
    version = schema.schema_version
    for migration in TENANT_MIGRATIONS:
        if migration.version > schema.schema_version:
            await apply_schema_migration(conn, schema, migration)
            version = migration.version
    return version


async def create_scratch(
    tenant: TenantRef, version: int, *, now: datetime | None = None
) -> TenantRef:
    """A fresh schema owned by ``tenant``'s role, migrated exactly to ``version``; the
    registry is not touched. The ref returned names the scratch schema (same tenant id
    and role). It holds what the migrations seeded: the load empties it first."""
    migrations = migrations_up_to(version)
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    async with in_transaction() as conn:
        while await _schema_exists(conn, scratch_name(tenant.slug, at)):
            at += timedelta(seconds=1)  # a second restore within the same second
        scratch = replace(tenant, schema_name=scratch_name(tenant.slug, at), schema_version=0)
        await conn.execute_script(
            f"CREATE SCHEMA {quote_ident(scratch.schema_name)}"
            f" AUTHORIZATION {quote_ident(tenant.role_name)}"
        )
        for migration in migrations:
            await apply_schema_migration(conn, scratch, migration)
    return replace(scratch, schema_version=version)


async def swap_in(
    tenant: TenantRef,
    scratch: TenantRef,
    keep_days: int,
    *,
    reason: str = "restore",
    record: Record | None = None,
    details: Mapping[str, Any] | None = None,
    reapply: Reapply | None = None,
) -> RetiredSchema:
    """Make the loaded ``scratch`` schema ``tenant``'s, in one transaction: the audit
    trail and alarm state are carried over from the schema it replaces
    (:mod:`dangan.tenants.carrying`), and so are destruction records, legal holds and
    files still to remove (:mod:`dangan.tenants.carrying_retention`); ``reapply`` runs
    in the restored schema; the registry points to it (at the latest version), the
    replaced schema is recorded as retired for ``keep_days``, and ``record`` (a job's
    or command's audit log) is given ``backup.restore`` in the chain, saying where the
    replaced chain ended, whether it was carried over, what retention carried and what
    ``reapply`` returned."""
    if keep_days < 0:
        raise RestoreError("keep_days must not be negative")
    if scratch.id != tenant.id or scratch.schema_name == tenant.schema_name:
        raise RestoreError(f"{scratch.schema_name} is not a scratch schema of {tenant.slug}")
    latest = TENANT_MIGRATIONS[-1].version
    async with in_transaction() as conn:
        carried = await lock_carried(conn, tenant)
        live = await conn.execute_query_dict(
            "SELECT schema_name FROM public.tenant WHERE id = $1 FOR UPDATE", [tenant.id]
        )
        if not live or live[0]["schema_name"] != tenant.schema_name:
            raise RestoreError(
                f"tenant {tenant.slug} no longer uses schema {tenant.schema_name}"
                " (another restore finished meanwhile?): nothing was swapped"
            )
        await _check_ready(conn, scratch, latest)
        previous_head = await _audit_head(conn, tenant)
        if carried:
            await copy_carried(conn, tenant, scratch)
        retention = await carry_retention(conn, tenant, scratch)
        if retention.differing_records:
            log.warning(
                "destruction records differ from the backup's: the backup's are kept",
                tenant=tenant.slug,
                records=retention.differing_records,
            )
        reapplied: Mapping[str, Any] = {}
        if reapply is not None:
            async with tenant_part(conn, scratch):
                reapplied = await reapply()
        await remirror(conn, scratch)
        rows = await conn.execute_query_dict(
            "INSERT INTO public.retired_schema (schema_name, tenant_id, drop_after, reason)"
            " VALUES ($1, $2, now() + make_interval(days => $3), $4)"
            " RETURNING retired_at, drop_after",
            [tenant.schema_name, tenant.id, keep_days, reason],
        )
        await conn.execute_query(
            "UPDATE public.tenant SET schema_name = $2, schema_version = $3 WHERE id = $1",
            [tenant.id, scratch.schema_name, latest],
        )
        retired = RetiredSchema(
            tenant.id, tenant.schema_name, rows[0]["retired_at"], rows[0]["drop_after"], reason
        )
        if record is not None:
            async with tenant_part(conn, replace(tenant, schema_name=scratch.schema_name)):
                await record(
                    RESTORE_ACTION,
                    {
                        **(details or {}),
                        "schema": scratch.schema_name,
                        "retiredSchema": retired.schema_name,
                        "dropAfter": retired.drop_after.isoformat(),
                        "reason": reason,
                        "previousHead": previous_head,
                        "auditTrail": "carried over" if carried else "from the backup",
                        "retentionCarried": retention.details(),
                        **reapplied,
                    },
                )
    log.info(
        "schema swapped in",
        tenant=tenant.slug,
        schema=scratch.schema_name,
        retired=retired.schema_name,
        drop_after=retired.drop_after.isoformat(),
    )
    return retired


async def _check_ready(conn: BaseDBAsyncClient, scratch: TenantRef, latest: int) -> None:
    """The scratch schema exists, belongs to the tenant's role and is at ``latest``."""
    owner = await conn.execute_query_dict(
        "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1",
        [scratch.schema_name],
    )
    if not owner or owner[0]["owner"] != scratch.role_name:
        raise RestoreError(f"schema {scratch.schema_name} is missing or not the tenant's")
    async with tenant_part(conn, scratch):
        version = await conn.execute_query_dict("SELECT max(version) AS v FROM schema_migration")
    if version[0]["v"] != latest:
        raise RestoreError(
            f"schema {scratch.schema_name} is at version {version[0]['v']}, not {latest}"
        )


async def _audit_head(conn: BaseDBAsyncClient, tenant: TenantRef) -> dict[str, Any] | None:
    """Where the chain being replaced ends (None before the audit trail's version)."""
    async with tenant_part(conn, tenant):
        found = await conn.execute_query_dict("SELECT to_regclass('audit_head') AS head")
        if found[0]["head"] is None:
            return None
        rows = await conn.execute_query_dict("SELECT last_seq, last_hash FROM audit_head")
    return {"seq": rows[0]["last_seq"], "hash": rows[0]["last_hash"]}


async def _schema_exists(conn: BaseDBAsyncClient, schema: str) -> bool:
    rows = await conn.execute_query_dict("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])
    return bool(rows)


async def check_scratch(scratch: TenantRef) -> None:
    """``scratch`` names a scratch schema: no registry row and no retired row names it
    (a load empties the schema it is given: never the live one, nor a kept one)."""
    db = connections.get("default")
    _, rows = await db.execute_query(
        "SELECT 1 FROM public.tenant WHERE schema_name = $1"
        " UNION ALL SELECT 1 FROM public.retired_schema WHERE schema_name = $1",
        [scratch.schema_name],
    )
    if rows:
        raise RestoreError(f"schema {scratch.schema_name} is in use: a restore loads a new one")


async def drop_scratch(scratch: TenantRef) -> bool:
    """Drop a scratch schema (a drill's, or a failed restore's). Refused — False — if the
    registry points to it or it is a retired schema: only scratch schemas go this way."""
    return await _drop(scratch.id, scratch.role_name, scratch.schema_name, retired=False)


async def drop_retired(
    now: datetime | None = None,
    *,
    tenant: TenantRef | None = None,
    abandoned_after: timedelta = ABANDONED_SCRATCH_AFTER,
) -> list[str]:
    """Drop the retired schemas past their ``drop_after`` and the scratch schemas
    abandoned longer than ``abandoned_after`` (of every tenant, or of ``tenant``);
    returns their names. Safe to run twice or concurrently."""
    now = now or datetime.now(UTC)
    db = connections.get("default")
    only = tenant.id if tenant is not None else None
    _, due = await db.execute_query(
        "SELECT r.schema_name, r.tenant_id, t.role_name FROM public.retired_schema r"
        " JOIN public.tenant t ON t.id = r.tenant_id"
        " WHERE r.drop_after <= $1 AND ($2::int IS NULL OR r.tenant_id = $2)"
        " ORDER BY r.drop_after",
        [now, only],
    )
    dropped = [
        row["schema_name"]
        for row in due
        if await _drop(
            row["tenant_id"], row["role_name"], row["schema_name"], retired=True, now=now
        )
    ]
    for schema in await _abandoned(now - abandoned_after, only):
        if await _drop(schema.id, schema.role_name, schema.schema_name, retired=False):
            dropped.append(schema.schema_name)
    return dropped


async def _abandoned(made_before: datetime, only: int | None) -> list[TenantRef]:
    """Scratch schemas no registry row and no retired row name, made before the time."""
    db = connections.get("default")
    _, rows = await db.execute_query(
        "SELECT n.nspname, t.id, t.slug, t.name, t.role_name, t.status, t.schema_version"
        " FROM pg_namespace n JOIN pg_roles o ON o.oid = n.nspowner"
        " JOIN public.tenant t ON t.role_name = o.rolname"
        " WHERE ($1::int IS NULL OR t.id = $1)"
        " AND NOT EXISTS (SELECT 1 FROM public.tenant x WHERE x.schema_name = n.nspname)"
        " AND NOT EXISTS (SELECT 1 FROM public.retired_schema r WHERE r.schema_name = n.nspname)",
        [only],
    )
    found = []
    for row in rows:
        match = re.fullmatch(rf"t_{re.escape(row['slug'])}_r(\d{{14}})", row["nspname"])
        if match is None:
            continue  # not a name a restore gives: never ours to drop
        made = datetime.strptime(match[1], _STAMP).replace(tzinfo=UTC)
        if made <= made_before:
            found.append(
                TenantRef(
                    id=row["id"],
                    slug=row["slug"],
                    name=row["name"],
                    schema_name=row["nspname"],
                    role_name=row["role_name"],
                    status=row["status"],
                    schema_version=row["schema_version"],
                )
            )
    return found


async def _drop(
    tenant_id: int, role: str, schema: str, *, retired: bool, now: datetime | None = None
) -> bool:
    """Drop ``schema`` as ``role`` (its owner) unless, holding the tenant's registry row,
    the registry points to it; a retired schema only while its row is due (the row goes
    with it), a scratch one only while no retired row names it."""
    async with in_transaction() as conn:
        live = await conn.execute_query_dict(
            "SELECT schema_name FROM public.tenant WHERE id = $1 FOR NO KEY UPDATE", [tenant_id]
        )
        if not live or live[0]["schema_name"] == schema:
            log.warning("refused to drop a schema the registry uses", schema=schema)
            return False
        if retired:
            still_due = await conn.execute_query_dict(
                "DELETE FROM public.retired_schema WHERE schema_name = $1 AND drop_after <= $2"
                " RETURNING schema_name",
                [schema, now],
            )
            if not still_due:  # dropped by a concurrent run, or kept longer meanwhile
                return False
        elif await conn.execute_query_dict(
            "SELECT 1 FROM public.retired_schema WHERE schema_name = $1", [schema]
        ):
            return False
        await conn.execute_script(
            f"SET LOCAL ROLE {quote_ident(role)};"
            f" DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE; RESET ROLE"
        )
    log.info("schema dropped", schema=schema, retired=retired)
    return True
