"""Attachments of a customer (contract scans, ID copies, licences) kept in S3.

Each category belongs to a sensitivity class (``checks.CATEGORY_CLASSES``); the policy's
decision for that class on the customer decides who lists an attachment (full or
masked) and who may fetch the file (full only). Files are uploaded and downloaded
through short-lived presigned URLs, under tenant-prefixed keys
``attachments/<tenant>/<customer>/<attachment>``.
"""

from dangan.services.attachments.checks import CATEGORY_CLASSES
from dangan.services.attachments.files import (
    DownloadLink,
    attachments_for_customers,
    delete_attachment,
    download_link,
)
from dangan.services.attachments.uploads import (
    UploadTicket,
    complete_upload,
    object_key,
    request_upload,
)

__all__ = [
    "CATEGORY_CLASSES",
    "DownloadLink",
    "UploadTicket",
    "attachments_for_customers",
    "complete_upload",
    "delete_attachment",
    "download_link",
    "object_key",
    "request_upload",
]
