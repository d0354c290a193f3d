"""Getting a stored attachment's file, deleting one, and listing them per customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.services.attachments.checks import parse_attachment_id
from dangan.services.attachments.uploads import staging_key
from dangan.services.attachments.views import (
    FROM,
    attachment_view,
    attachments_of_customers,
    category_case,
    locked_rights,
)
from dangan.services.callers import Caller
from dangan.services.changes import record_change
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.storage import ObjectStore
from dangan.tenants.scope import raw_connection

DOWNLOAD_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class DownloadLink:
    url: str  # presigned GET, saved under the original file name
    expires_at: datetime


async def download_link(caller: Caller, objects: ObjectStore, attachment_id: str) -> DownloadLink:
    """A short-lived link to a stored file whose class the caller sees in full on its
    customer. Anything else — missing, pending, deleted, masked or hidden class,
    invisible customer — is the same NOT_FOUND."""
    check_allowed(caller, "customer.read")
    uid = parse_attachment_id(attachment_id)
    access = await customer_access(caller)
    sql = Numbered()
    row = await raw_connection().fetchrow(
        f"SELECT a.object_key, a.filename {FROM} WHERE a.id = {sql.value(uid)}"
        f" AND a.status = 'STORED' AND {sql.add(access.rows)}"
        f" AND {category_case(sql, access, 'full')}",
        *sql.params,
    )
    if row is None:
        raise NotFound("no attachment with this id")
    expires_at = datetime.now(UTC) + DOWNLOAD_WINDOW
    url = await objects.download_url(row["object_key"], DOWNLOAD_WINDOW, filename=row["filename"])
    return DownloadLink(url=url, expires_at=expires_at)


async def delete_attachment(
    caller: Caller, objects: ObjectStore, attachment_id: str, reason: str
) -> Any:
    """Remove the file from S3 and mark the attachment DELETED with who, when and why;
    the row stays as the record of the deletion (with a change record)."""
    check_allowed(caller, "customer.update")
    reason = " ".join(reason.split())
    if not 5 <= len(reason) <= 500:
        raise BadUserInput("reason must be 5 to 500 characters", field="reason")
    uid = parse_attachment_id(attachment_id)
    access = await customer_access(caller)
    async with raw_connection().savepoint():
        row = await locked_rights(access, uid)
        if row is None or not row["visible"]:
            raise NotFound("no attachment with this id")
        if not row["editable"]:
            raise Forbidden("your access does not allow changing this customer")
        if row["status"] == "DELETED":
            raise Conflict("this attachment is already deleted", field="id")
        await raw_connection().execute(
            "UPDATE attachment SET status = 'DELETED', deleted_at = now(), deleted_by = $2,"
            " delete_reason = $3 WHERE id = $1",
            uid,
            caller.id if caller.kind == "user" else None,
            reason,
        )
        await record_change(
            caller,
            row["customer_id"],
            "delete",
            {"status": (row["status"], "DELETED")},
            record_type="attachment",
            record_id=uid,
            reason=reason,
        )
        # Last, so a failure to remove rolls the row back and nothing claims a deletion
        # that did not happen.
        await objects.remove(staging_key(row["object_key"]))
        await objects.remove(row["object_key"])
    return await attachment_view(access, uid)


async def attachments_for_customers(
    caller: Caller, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """For each customer, the stored and deleted attachments the caller may see."""
    return await attachments_of_customers(await customer_access(caller), customer_ids)
