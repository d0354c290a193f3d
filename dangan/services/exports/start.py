"""``startCustomerExport``: check the request as ``customers`` would, then queue the
job — or, above the tenant's threshold, wait for an approval.

The threshold is the tenant's ``archive_setting`` ``export_approval_threshold`` if set,
else the deployment's ``DANGAN_EXPORT_APPROVAL_THRESHOLD`` (500 rows); an export of
more rows than that waits for an admin or manager other than the requester.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from arq.connections import ArqRedis

from dangan.authz.capabilities import check_allowed
from dangan.authz.store import customer_access
from dangan.services.archive_jobs import check_staff, create_job, enqueue
from dangan.services.callers import Caller
from dangan.services.customers.conditions import Condition
from dangan.services.customers.reads import list_customers
from dangan.services.errors import BadUserInput
from dangan.services.exports.fields import EXPORT_FIELDS, export_fields
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection

FORMATS = ("CSV", "XLSX")

__all__ = ["EXPORT_FIELDS", "approval_threshold", "start_customer_export"]


async def approval_threshold(default: int) -> int:
    """Rows an export may hold without an approval, in the current tenant."""
    value = await raw_connection().fetchval(
        "SELECT value FROM archive_setting WHERE key = 'export_approval_threshold'"
    )
    return int(value) if value is not None else default


async def start_customer_export(
    caller: Caller,
    *,
    format: str,
    fields: Sequence[str] | None,
    conditions: Sequence[Condition],
    search: str | None,
    queue: ArqRedis | None,
    settings: Settings,
) -> dict[str, Any]:
    """Validate fields, conditions and search now (the job repeats them as the requester
    when it runs), record the job and queue it unless it needs an approval. Without a
    ``queue`` the job is only recorded: the caller runs it (``dangan customers export``)."""
    check_staff(caller)
    check_allowed(caller, "customer.read")
    if format not in FORMATS:
        raise BadUserInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    names = await export_fields(await customer_access(caller), fields)
    page = await list_customers(
        caller, first=1, conditions=conditions, search=search, with_total=True
    )
    rows = int(page.total or 0)
    threshold = await approval_threshold(settings.export_approval_threshold)
    parameters = {
        "format": format,
        "fields": names,
        "where": [asdict(condition) for condition in conditions],
        "search": search,
        "rowsAtRequest": rows,
        "threshold": threshold,
    }
    job_id = uuid.uuid4()
    status = "AWAITING_APPROVAL" if rows > threshold else "QUEUED"
    async with raw_connection().savepoint():
        job = await create_job(
            caller,
            job_id,
            "EXPORT",
            parameters,
            status=status,
            object_key=f"exports/{caller.tenant_slug}/{job_id}/customers.{format.lower()}",
            total=rows,
        )
    if status == "QUEUED" and queue is not None:
        await enqueue(queue, settings.redis_namespace, caller.tenant_slug, job)
    return job
