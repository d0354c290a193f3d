"""The export job: the requester's customers page by page, as they see them, into a
CSV or XLSX file whose first line says who exported what, when — and that it is
confidential.

The job acts as the requester with the roles they have when it runs; every page goes
through ``list_customers`` (their row filter, their masking, hidden values empty), with
the fields, conditions and search checked again, as for a ``customers`` query. Cells
that a spreadsheet would take for a formula are prefixed with ``'``. The transaction that
finishes the job records ``export.run`` (the requester as actor, the row count and the
ids of the customers exported) in the audit trail.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from dangan.audit.actions import ActionLog
from dangan.authz.access import HIDDEN_FLAG
from dangan.authz.store import customer_access
from dangan.services.archive_runs import finish, save_progress
from dangan.services.callers import Caller
from dangan.services.customers.conditions import Condition
from dangan.services.customers.reads import list_customers
from dangan.services.exports.fields import EXPORT_FIELDS, export_fields
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, run_in_tenant

Progress = Callable[[int, int, str], Awaitable[None]]
PAGE_SIZE = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(row: Any, column: str) -> str:
    if row.get(f"{HIDDEN_FLAG}{column}"):
        return ""
    value = row[column]
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, list | tuple):
        text = ";".join(str(item) for item in value)
    else:
        text = str(value)
    return spreadsheet_safe(text)


def spreadsheet_safe(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text: one it would take for a formula
    (starting with =, +, -, @, a tab or a carriage return) gets a leading ``'``."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def watermark(caller: Caller, tenant: TenantRef, parameters: dict[str, Any], rows: int) -> str:
    """The first line of every export: who, when, which tenant, what was asked, how many."""
    where = "; ".join(f"{c['name']} {c['op']} {','.join(c['values'])}" for c in parameters["where"])
    return (
        f"CONFIDENTIAL — for internal use (机密，仅限内部使用) | exported by {caller.name}"
        f" <{caller.email or ''}> | at {datetime.now(UTC).isoformat(timespec='seconds')}"
        f" | tenant {tenant.slug} ({tenant.name}) | fields: {','.join(parameters['fields'])}"
        f" | where: {where or '-'} | search: {parameters['search'] or '-'} | rows: {rows}"
    )


def _csv(mark: str, names: Sequence[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([mark])
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _xlsx(mark: str, names: Sequence[str], rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook  # only export jobs need it

    book = Workbook(write_only=True)
    sheet = book.create_sheet("customers")
    sheet.append([mark])
    sheet.append(list(names))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _conditions(parameters: dict[str, Any]) -> list[Condition]:
    return [
        Condition(
            name=c["name"],
            column=c["column"],
            op=c["op"],
            values=tuple(c["values"]),
            label=c["label"],
        )
        for c in parameters["where"]
    ]


async def run_export(
    caller: Caller,
    tenant: TenantRef,
    job: dict[str, Any],
    objects: ObjectStore,
    *,
    progress: Progress,
    log: ActionLog,
) -> dict[str, Any]:
    """Run an export job as ``caller``; returns its result (the file is in S3)."""
    parameters = job["parameters"]
    job_id: uuid.UUID = job["id"]
    conditions = _conditions(parameters)

    async def fields() -> list[str]:
        return await export_fields(await customer_access(caller), parameters["fields"])

    names = await run_in_tenant(tenant, fields)
    columns = [EXPORT_FIELDS[name] for name in names]
    rows: list[list[str]] = []
    exported: list[uuid.UUID] = []
    after: str | None = None
    while True:

        async def page(after: str | None = after, before: int = len(rows)) -> Any:
            found = await list_customers(
                caller,
                first=PAGE_SIZE,
                after=after,
                conditions=conditions,
                search=parameters["search"],
                columns=columns,
            )
            done = before + len(found.rows)
            await save_progress(job_id, done, max(done, job["total"] or 0))
            return found

        found = await run_in_tenant(tenant, page)
        rows += [[_cell(row, column) for column in columns] for row in found.rows]
        exported += [row["id"] for row in found.rows]
        await progress(len(rows), max(len(rows), job["total"] or 0), "reading")
        if not found.has_next:
            break
        after = found.cursor(found.rows[-1])
    mark = watermark(caller, tenant, parameters, len(rows))
    write = _xlsx if parameters["format"] == "XLSX" else _csv
    data = await asyncio.to_thread(write, mark, names, rows)
    content_type = (
        "text/csv; charset=utf-8"
        if parameters["format"] == "CSV"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    await objects.put_bytes(job["object_key"], data, content_type)
    result = {"rows": len(rows), "fields": names, "bytes": len(data), "watermark": mark}

    async def record() -> None:
        await save_progress(job_id, len(rows), len(rows))
        if await finish(job_id, result, None):
            await log.record(
                "export.run",
                actor=caller,
                details={
                    "job": str(job_id),
                    "format": parameters["format"],
                    "fields": names,
                    "rows": len(rows),
                    "bytes": len(data),
                },
                customers=exported,
                request_id=str(job_id),
            )

    await run_in_tenant(tenant, record)
    return result
