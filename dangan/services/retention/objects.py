"""Removing the attachment files of destroyed customers from S3: a durable to-do.

The destroying transaction deletes the attachment rows and queues their object keys in
``retention_object_removal``; only after it commits are the objects (and any upload
left at their staging key) removed, and then their to-do rows. So a transaction that
rolls back removes no file, and a crash between the commit and the removal leaves the
to-do for the next run — never a file of a destroyed customer. Keys outside the
tenant's own attachment prefix are refused (never removed, kept with an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from dangan.services.attachments.uploads import staging_key
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

BATCH = 500
log = structlog.get_logger("dangan.retention")


@dataclass(frozen=True)
class RemovalReport:
    removed: int
    failed: int


async def pending_removals(
    limit: int = BATCH, record_id: int | None = None, skip: Sequence[str] = ()
) -> list[str]:
    """Object keys still to remove (of one destruction record, or of any), but ``skip``."""
    rows = await raw_connection().fetch(
        "SELECT object_key FROM retention_object_removal"
        " WHERE ($2::bigint IS NULL OR record_id = $2) AND NOT object_key = ANY($3::text[])"
        " ORDER BY queued_at, object_key LIMIT $1",
        limit,
        record_id,
        list(skip),
    )
    return [row["object_key"] for row in rows]


async def unwanted_objects(keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` (attachment files in a backup) that must not be put back: no
    attachment row names them (its customer was destroyed, or the row deleted), or they
    are queued for removal."""
    rows = await raw_connection().fetch(
        "SELECT k FROM unnest($1::text[]) AS k"
        " WHERE NOT EXISTS (SELECT 1 FROM attachment a WHERE a.object_key = k)"
        " OR EXISTS (SELECT 1 FROM retention_object_removal r WHERE r.object_key = k)",
        list(keys),
    )
    return {row["k"] for row in rows}


async def remove_queued_objects(
    tenant: TenantRef, objects: ObjectStore, record_id: int | None = None
) -> RemovalReport:
    """Remove the queued objects (of ``record_id``, or all), batch by batch; a failure
    is counted, noted on its to-do row and left for the next run."""
    prefix = f"attachments/{tenant.slug}/"
    removed = failed = 0
    failed_keys: set[str] = set()
    while True:
        keys = await run_in_tenant(
            tenant, lambda: pending_removals(BATCH, record_id, sorted(failed_keys))
        )
        if not keys:
            return RemovalReport(removed, failed)
        done: list[str] = []
        errors: list[tuple[str, str]] = []
        for key in keys:
            if not key.startswith(prefix):
                errors.append((key, f"not under {prefix}: refused"))
                continue
            try:
                await objects.remove(staging_key(key))
                await objects.remove(key)
            except Exception as exc:  # S3 unavailable, say: tried again next run
                log.warning("could not remove an object", tenant=tenant.slug, error=str(exc))
                errors.append((key, type(exc).__name__))
            else:
                done.append(key)

        async def settle(done: list[str] = done, errors: list[tuple[str, str]] = errors) -> None:
            await raw_connection().execute(
                "DELETE FROM retention_object_removal WHERE object_key = ANY($1::text[])", done
            )
            if errors:
                await raw_connection().execute(
                    "UPDATE retention_object_removal SET attempts = attempts + 1,"
                    " last_error = e.error FROM unnest($1::text[], $2::text[]) AS e(key, error)"
                    " WHERE object_key = e.key",
                    [key for key, _ in errors],
                    [error for _, error in errors],
                )

        await run_in_tenant(tenant, settle)
        removed += len(done)
        failed += len(errors)
        failed_keys.update(key for key, _ in errors)
