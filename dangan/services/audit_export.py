"""The audit trail as CSV: for ``exportAuditEvents`` (a file in S3 behind a short-lived
link) and for ``dangan audit events --csv`` (a local file).

The first line says whose trail, who exported it, when, with which filter and how many
events — and that it is confidential; the second names the columns; then one event per
line, newest first, with every customer id it returned. Cells a spreadsheet would take
for a formula (a user agent or an operation name is whatever the caller sent) are
protected as in customer exports.
"""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson

from dangan.authz.audit_reading import check_audit_reader
from dangan.services.audit_log import (
    AuditFilter,
    AuditRecord,
    Matching,
    iter_events,
    matching_events,
)
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.services.exports.job import spreadsheet_safe
from dangan.storage import ObjectStore

# More than this is not exported inside one request: narrow the filter, or use the command.
MAX_EVENTS = 50_000
CONTENT_TYPE = "text/csv; charset=utf-8"
FILENAME = "audit-events.csv"
HEADER = (
    "seq",
    "at",
    "requestId",
    "actorKind",
    "actorId",
    "actorName",
    "actorRoles",
    "clientAddress",
    "userAgent",
    "operationType",
    "operationName",
    "actions",
    "outcome",
    "errorCodes",
    "customerCount",
    "customerIds",
    "fields",
    "variables",
    "changes",
)
_SPOOL_BYTES = 8 * 1024 * 1024
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AuditExport:
    url: str  # presigned GET
    expires_at: datetime
    events: int


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _listed(values: list[Any]) -> str:
    return ";".join(str(value) for value in values)


def event_cells(record: AuditRecord) -> list[str]:
    """One event as CSV cells, in HEADER order."""
    cells = [
        str(record.seq),
        record.at.astimezone(UTC).isoformat(),
        record.request_id,
        record.actor_kind,
        "" if record.actor_id is None else str(record.actor_id),
        record.actor_name or "",
        _listed(record.actor_roles),
        record.client_address or "",
        record.user_agent or "",
        record.operation_type,
        record.operation_name or "",
        _listed(record.actions),
        record.outcome,
        _listed(record.error_codes),
        str(record.customer_count),
        _listed(record.customer_ids),
        _json(record.fields),
        _json(record.variables),
        _json(record.changes),
    ]
    return [spreadsheet_safe(cell) for cell in cells]


def watermark(tenant: str, reader: str, where: AuditFilter, events: int) -> str:
    described = ", ".join(f"{name}={value}" for name, value in where.described().items())
    return (
        f"CONFIDENTIAL — audit trail (审计记录) of tenant {tenant} | exported by {reader}"
        f" | at {datetime.now(UTC).isoformat(timespec='seconds')}"
        f" | filter: {described or '-'} | events: {events}"
    )


async def write_csv(
    out: IO[str],
    where: AuditFilter,
    matching: Matching,
    *,
    tenant: str,
    reader: str,
    progress: Progress | None = None,
) -> int:
    """Write the ``matching`` events (counted by :func:`matching_events` in the open
    tenant transaction) to ``out``, a text file opened with ``newline=""``; returns how
    many were written."""
    writer = csv.writer(out)
    writer.writerow([spreadsheet_safe(watermark(tenant, reader, where, matching.events))])
    writer.writerow(HEADER)
    written = 0
    async for records in iter_events(where, upto=matching.newest):
        writer.writerows(event_cells(record) for record in records)
        written += len(records)
        if progress is not None:
            progress(written, matching.events)
    return written


async def export_audit_events(
    caller: Caller, objects: ObjectStore, where: AuditFilter, *, link_seconds: int
) -> AuditExport:
    """Write the events meeting ``where`` as CSV to S3 and return a link to it that
    works for ``link_seconds``."""
    await check_audit_reader(caller)
    matching = await matching_events(where)
    if matching.events > MAX_EVENTS:
        raise BadUserInput(
            f"{matching.events} events match: at most {MAX_EVENTS} are exported at once; narrow the"
            " filter (a period, an actor), or use `dangan audit events --csv`",
            field="filter",
        )
    reader = f"{caller.name} <{caller.email or ''}>"
    key = f"audit-exports/{caller.tenant_slug}/{uuid.uuid4()}/{FILENAME}"
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
        written = await write_csv(text, where, matching, tenant=caller.tenant_slug, reader=reader)
        text.flush()
        raw = text.detach()
        length = raw.tell()
        raw.seek(0)
        await objects.put_stream(key, raw, length, CONTENT_TYPE)  # type: ignore[arg-type]
    expires = timedelta(seconds=link_seconds)
    url = await objects.download_url(key, expires, filename=FILENAME)
    return AuditExport(url=url, expires_at=datetime.now(UTC) + expires, events=written)
