"""Attachments (contract scans, ID copies, licences): upload in two steps, download by
a short-lived link, delete with a reason, and ``Customer.attachments``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.services import attachments
from dangan.services.attachments.views import FULL_ONLY

# Python names of the fields null where the category's class is shown only masked.
_FULL_ONLY = frozenset(FULL_ONLY)


@strawberry.enum(description="What a file is; its category decides who may see it")
class AttachmentCategory(Enum):
    CONTRACT_SCAN = "CONTRACT_SCAN"
    ID_COPY = "ID_COPY"
    LICENSE = "LICENSE"
    OTHER = "OTHER"


@strawberry.enum
class AttachmentStatus(Enum):
    PENDING = "PENDING"
    STORED = "STORED"
    DELETED = "DELETED"


@strawberry.type(
    description="A file attached to a customer. Listed where its category's class "
    "(CONTRACT_SCAN business, ID_COPY identity, LICENSE basic, OTHER notes) is shown to "
    "you; where that class is only masked, the file name is masked (****.pdf), the file "
    "not downloadable, and contractId, sizeBytes, sha256 and deleteReason are null (in "
    "extensions.redacted). Deleted ones stay listed as the record of their deletion."
)
class Attachment:
    id: strawberry.ID
    customer_id: strawberry.ID
    contract_id: strawberry.ID | None
    category: AttachmentCategory
    sensitivity: str
    filename: str
    content_type: str
    size_bytes: int | None
    sha256: str | None
    status: AttachmentStatus
    uploaded_by: int | None
    uploaded_at: datetime
    stored_at: datetime | None
    deleted_at: datetime | None
    deleted_by: int | None
    delete_reason: str | None
    downloadable: bool = strawberry.field(
        description="Whether attachmentDownloadUrl gives you this file"
    )
    redacted: strawberry.Private[frozenset[str]]

    @classmethod
    def from_row(cls, row: Any) -> Attachment:
        return cls(
            id=strawberry.ID(str(row["id"])),
            customer_id=strawberry.ID(str(row["customer_id"])),
            contract_id=strawberry.ID(str(row["contract_id"])) if row["contract_id"] else None,
            category=AttachmentCategory(row["category"]),
            sensitivity=attachments.CATEGORY_CLASSES[row["category"]],
            filename=row["filename"],
            content_type=row["content_type"],
            size_bytes=row["size_bytes"],
            sha256=row["sha256"],
            status=AttachmentStatus(row["status"]),
            uploaded_by=row["uploaded_by"],
            uploaded_at=row["created_at"],
            stored_at=row["stored_at"],
            deleted_at=row["deleted_at"],
            deleted_by=row["deleted_by"],
            delete_reason=row["delete_reason"],
            downloadable=bool(row["full_access"]) and row["status"] == "STORED",
            redacted=frozenset() if row["full_access"] else _FULL_ONLY,
        )


@strawberry.type
class AttachmentUpload:
    attachment: Attachment
    upload_url: str = strawberry.field(
        description="PUT the file here, with the declared Content-Type, before expiresAt; "
        "then call completeAttachmentUpload"
    )
    expires_at: datetime


@strawberry.type
class AttachmentDownload:
    url: str = strawberry.field(description="GET the file here before expiresAt")
    expires_at: datetime


@strawberry.input
class AttachmentUploadInput:
    category: AttachmentCategory
    filename: str
    content_type: str
    size_bytes: int
    sha256: str = strawberry.field(description="SHA-256 of the file, 64 hex characters")
    contract_id: strawberry.ID | None = None


async def request_attachment_upload(
    info: Info, customer_id: strawberry.ID, input: AttachmentUploadInput
) -> AttachmentUpload:
    """Register a file for a customer you may edit; returns where to PUT it."""
    context = info.context
    ticket = await attachments.request_upload(
        context.require_caller(),
        context.objects,
        context.settings,
        str(customer_id),
        category=input.category.value,
        filename=input.filename,
        content_type=input.content_type,
        size_bytes=input.size_bytes,
        sha256=input.sha256,
        contract_id=str(input.contract_id) if input.contract_id is not None else None,
    )
    return AttachmentUpload(
        attachment=Attachment.from_row(ticket.attachment),
        upload_url=ticket.url,
        expires_at=ticket.expires_at,
    )


async def complete_attachment_upload(info: Info, id: strawberry.ID) -> Attachment:
    """Check the uploaded file (size, type, SHA-256, encryption) and keep it."""
    context = info.context
    row = await attachments.complete_upload(context.require_caller(), context.objects, str(id))
    return Attachment.from_row(row)


async def attachment_download_url(info: Info, id: strawberry.ID) -> AttachmentDownload:
    """A link to a stored file, valid for about 5 minutes."""
    context = info.context
    link = await attachments.download_link(context.require_caller(), context.objects, str(id))
    return AttachmentDownload(url=link.url, expires_at=link.expires_at)


async def delete_attachment(info: Info, id: strawberry.ID, reason: str) -> Attachment:
    """Remove the file; the attachment stays listed as DELETED with your reason."""
    context = info.context
    row = await attachments.delete_attachment(
        context.require_caller(), context.objects, str(id), reason
    )
    return Attachment.from_row(row)


async def customer_attachments(root: Any, info: Info) -> list[Attachment]:
    """Files attached to this customer that you may see (one query per page)."""
    rows = await info.context.attachments.load(root.id)
    return [Attachment.from_row(row) for row in rows]
