"""Uploading an attachment in two steps: ask (a PENDING row and a presigned PUT URL),
then complete (the file is checked and kept).

The caller PUTs the file to a staging key next to the attachment's own key; completing
copies it, server-side, to the attachment's key (which no URL ever lets a caller write)
and checks that copy — size, declared type, first bytes, encryption at rest, SHA-256 —
so what is kept is exactly what was checked, even if the upload URL is used again. A
file that fails a check is removed and the row stays PENDING: the caller may PUT again
while the URL is valid (or ask for a new upload) and complete again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.services.attachments.checks import (
    CATEGORY_CLASSES,
    NOT_A_CONTRACT,
    SIGNATURE_BYTES,
    check_declared,
    content_matches,
    media_type,
    parse_attachment_id,
)
from dangan.services.attachments.views import attachment_view, class_predicate, locked_rights
from dangan.services.callers import Caller
from dangan.services.changes import record_change
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, Conflict, Forbidden, NotFound
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.scope import raw_connection

UPLOAD_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class UploadTicket:
    attachment: Any  # the PENDING attachment, as the caller sees it
    url: str  # presigned PUT
    expires_at: datetime


def object_key(tenant_slug: str, customer_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"attachments/{tenant_slug}/{customer_id}/{attachment_id}"


def staging_key(key: str) -> str:
    """Where the caller's PUT lands, until completion checks it."""
    return f"{key}.upload"


def _uploader(caller: Caller) -> int | None:
    return caller.id if caller.kind == "user" else None


async def _customer_rights(
    caller: Caller, customer_id: uuid.UUID, sensitivity: str, contract_id: uuid.UUID | None
) -> Any:
    access = await customer_access(caller)
    sql = Numbered()
    contract = "TRUE"
    if contract_id is not None:
        # The contract must be this customer's, and contracts (business) shown to the
        # caller: otherwise "not a contract of this customer", whichever it is.
        business = sql.add(class_predicate(access, "business", "shown"))
        contract = (
            f"COALESCE({business}, FALSE) AND EXISTS (SELECT 1 FROM contract k"
            f" WHERE k.id = {sql.value(contract_id)} AND k.customer_id = c.id)"
        )
    return await raw_connection().fetchrow(
        f"SELECT COALESCE({sql.add(access.can('edit'))}, FALSE) AS editable,"
        f" COALESCE({sql.add(class_predicate(access, sensitivity, 'shown'))}, FALSE) AS shown,"
        f" {contract} AS contract_ok FROM customer c"
        f" WHERE c.id = {sql.value(customer_id)} AND {sql.add(all_of([access.rows, LIVE]))}"
        " FOR UPDATE",
        *sql.params,
    )


async def request_upload(
    caller: Caller,
    objects: ObjectStore,
    settings: Settings,
    customer_id: str,
    *,
    category: str,
    filename: str,
    content_type: str,
    size_bytes: int,
    sha256: str,
    contract_id: str | None = None,
) -> UploadTicket:
    """Register an attachment to come and return where to PUT it (for ~10 minutes).
    NOT_FOUND unless the caller sees the customer and it is not merged; FORBIDDEN
    unless they may edit it and see the category's class on it."""
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    declared = check_declared(
        settings,
        category=category,
        filename=filename,
        content_type=content_type,
        size_bytes=size_bytes,
        sha256=sha256,
        contract_id=contract_id,
    )
    attachment_id = uuid.uuid4()
    key = object_key(caller.tenant_slug, uid, attachment_id)
    async with raw_connection().savepoint():
        rights = await _customer_rights(
            caller, uid, CATEGORY_CLASSES[declared.category], declared.contract_id
        )
        if rights is None:
            raise NotFound("no customer with this id")
        if not rights["editable"]:
            raise Forbidden("your access does not allow changing this customer")
        if not rights["shown"]:
            raise Forbidden(
                f"your access does not allow {declared.category} files on this customer",
                field="category",
            )
        if not rights["contract_ok"]:
            raise BadUserInput(NOT_A_CONTRACT, field="contractId")
        await raw_connection().execute(
            "INSERT INTO attachment (id, customer_id, contract_id, category, filename,"
            " content_type, size_bytes, sha256, object_key, uploaded_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            attachment_id,
            uid,
            declared.contract_id,
            declared.category,
            declared.filename,
            declared.content_type,
            declared.size_bytes,
            declared.sha256,
            key,
            _uploader(caller),
        )
        expires_at = datetime.now(UTC) + UPLOAD_WINDOW
        url = await objects.upload_url(staging_key(key), UPLOAD_WINDOW)
    view = await attachment_view(await customer_access(caller), attachment_id)
    return UploadTicket(attachment=view, url=url, expires_at=expires_at)


async def _check_staged(objects: ObjectStore, row: Any) -> None:
    """Size, declared type and first bytes of the uploaded file; removes it if wrong."""
    staged = staging_key(row["object_key"])
    found = await objects.stat(staged)
    if found is None:
        raise Conflict(
            "nothing has been uploaded for this attachment: PUT the file to its uploadUrl first",
            field="id",
        )
    problem: Conflict | None = None
    sent_type = media_type(found.content_type)
    if found.size != row["size_bytes"]:
        problem = Conflict(
            f"the uploaded file has {found.size} bytes, not the declared sizeBytes "
            f"{row['size_bytes']}",
            field="sizeBytes",
            details={"expected": row["size_bytes"], "actual": found.size},
        )
    elif sent_type != row["content_type"]:
        problem = Conflict(
            f"the file was uploaded as {sent_type or 'no type'}, not the declared contentType "
            f"{row['content_type']}: PUT it with that Content-Type header",
            field="contentType",
        )
    elif not content_matches(
        row["content_type"], await objects.head_bytes(staged, SIGNATURE_BYTES)
    ):
        problem = Conflict(f"the file's content is not {row['content_type']}", field="contentType")
    if problem is not None:
        await objects.remove(staged)
        raise problem


async def _keep(objects: ObjectStore, row: Any) -> None:
    """Move the checked upload to the attachment's key and check the copy kept there."""
    key = row["object_key"]
    await objects.copy(staging_key(key), key)
    await objects.remove(staging_key(key))
    kept = await objects.stat(key)
    problem: Conflict | None = None
    if kept is None or kept.size != row["size_bytes"]:
        problem = Conflict(
            "the file changed while it was being stored: upload it again", field="id"
        )
    elif not kept.encrypted:
        problem = Conflict(
            "the file was not encrypted at rest by the storage; it was not kept", field="id"
        )
    else:
        digest = await objects.sha256(key)
        if digest != row["sha256"]:
            problem = Conflict(
                f"the uploaded file's SHA-256 is {digest}, not the declared sha256",
                field="sha256",
                details={"expected": row["sha256"], "actual": digest},
            )
    if problem is not None:
        await objects.remove(key)
        raise problem


async def complete_upload(caller: Caller, objects: ObjectStore, attachment_id: str) -> Any:
    """Check the uploaded file and keep it (STORED, with a change record); CONFLICT
    naming what is wrong otherwise (the file is removed, the attachment stays PENDING).
    Completing a stored attachment again returns it unchanged."""
    check_allowed(caller, "customer.update")
    uid = parse_attachment_id(attachment_id)
    access = await customer_access(caller)
    async with raw_connection().savepoint():
        row = await locked_rights(access, uid)
        if row is None or not row["visible"]:
            raise NotFound("no attachment with this id")
        if not row["editable"]:
            raise Forbidden("your access does not allow changing this customer")
        if row["status"] == "DELETED":
            raise Conflict("this attachment was deleted", field="id")
        if row["status"] == "PENDING":
            await _check_staged(objects, row)
            await _keep(objects, row)
            await raw_connection().execute(
                "UPDATE attachment SET status = 'STORED', stored_at = now() WHERE id = $1", uid
            )
            await record_change(
                caller,
                row["customer_id"],
                "create",
                # Not the file name: it may carry what the class protects (张三身份证.jpg).
                {
                    "category": (None, row["category"]),
                    "status": ("PENDING", "STORED"),
                    "size_bytes": (None, row["size_bytes"]),
                    "sha256": (None, row["sha256"]),
                },
                record_type="attachment",
                record_id=uid,
            )
    return await attachment_view(access, uid)
