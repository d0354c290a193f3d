"""``startCustomerImport``: keep the file in S3, record the job, queue it.

The file is checked only as far as can be done at once (size, base64, format's
signature); the rows are checked by the job, as the requester, when it runs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from arq.connections import ArqRedis

from dangan.authz.capabilities import check_allowed
from dangan.services.archive_jobs import check_staff, create_job, enqueue
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.services.imports.parsing import FORMATS, XLSX_MAGIC
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import raw_connection

IMPORT_MODES = ("VALIDATE_ONLY", "IMPORT_IF_ALL_VALID", "IMPORT_VALID_ROWS")
_CONTENT_TYPES = {
    "CSV": "text/csv",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _content(content_base64: str, format: str, limit: int) -> bytes:
    if len(content_base64) > (limit + 2) // 3 * 4 + 4:
        raise BadUserInput(f"the file is larger than {limit:,} bytes", field="contentBase64")
    try:
        data = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadUserInput("contentBase64 is not valid base64", field="contentBase64") from exc
    if not data:
        raise BadUserInput("the file is empty", field="contentBase64")
    if len(data) > limit:
        raise BadUserInput(f"the file is larger than {limit:,} bytes", field="contentBase64")
    if format == "XLSX" and not data.startswith(XLSX_MAGIC):
        raise BadUserInput("contentBase64 is not an XLSX workbook", field="contentBase64")
    return data


async def start_customer_import(
    caller: Caller,
    *,
    format: str,
    filename: str,
    content_base64: str,
    mode: str,
    allow_possible_duplicates: bool,
    objects: ObjectStore,
    queue: ArqRedis | None,
    settings: Settings,
) -> dict[str, Any]:
    """Store the file and queue its import job; returns the job (QUEUED). Without a
    ``queue`` the job is only recorded: the caller runs it (``dangan customers import``)."""
    check_staff(caller)
    check_allowed(caller, "customer.create")
    if format not in FORMATS:
        raise BadUserInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    if mode not in IMPORT_MODES:
        raise BadUserInput(f"mode must be one of {', '.join(IMPORT_MODES)}", field="mode")
    filename = filename.strip()
    if not 1 <= len(filename) <= 255 or any(ch in filename for ch in "/\\\x00"):
        raise BadUserInput(
            "filename must be 1 to 255 characters, without slashes", field="filename"
        )
    data = _content(content_base64, format, settings.import_max_bytes)
    job_id = uuid.uuid4()
    key = f"imports/{caller.tenant_slug}/{job_id}/source.{format.lower()}"
    await objects.put_bytes(key, data, _CONTENT_TYPES[format])
    parameters = {
        "format": format,
        "filename": filename,
        "mode": mode,
        "allowPossibleDuplicates": allow_possible_duplicates,
        "bytes": len(data),
    }
    async with raw_connection().savepoint():
        job = await create_job(
            caller, job_id, "IMPORT", parameters, status="QUEUED", object_key=key
        )
    if queue is not None:
        await enqueue(queue, settings.redis_namespace, caller.tenant_slug, job)
    return job
