"""What an attachment is allowed to be: its category's sensitivity class, and the checks
on what a caller declares before uploading (name, type, size, checksum) and on what
actually arrived (the file's first bytes must match its declared type).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass

from dangan.services.errors import BadUserInput, NotFound
from dangan.settings import Settings

# Which sensitivity class decides who sees an attachment, by category: a contract scan
# is business information, an ID copy identity, a business licence only basic facts
# (it is public record), anything else is treated like notes. A caller lists an
# attachment where its class is shown to them (full or masked) on its customer, and
# gets the file only where it is shown in full.
# What the change record keeps of an attachment (not its file name: it may carry what
# the class protects, e.g. 张三身份证.jpg).
ATTACHMENT_CHANGE_FIELDS = ("category", "status", "size_bytes", "sha256")
CATEGORY_CLASSES: dict[str, str] = {
    "CONTRACT_SCAN": "business",
    "ID_COPY": "identity",
    "LICENSE": "basic",
    "OTHER": "notes",
}

# How files of the default types begin. A type configured without an entry here is
# accepted on its declared content type alone.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}
SIGNATURE_BYTES = 12
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILENAME = 255
NOT_A_CONTRACT = "contractId is not a contract of this customer"


@dataclass(frozen=True)
class Declared:
    """What the caller says they will upload, checked."""

    category: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    contract_id: uuid.UUID | None


def parse_attachment_id(raw: str) -> uuid.UUID:
    """A malformed id matches nothing: NOT_FOUND, like a missing or invisible one."""
    try:
        return uuid.UUID(str(raw))
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound("no attachment with this id") from exc


def clean_filename(raw: str) -> str:
    """The file's own name: no directories, no control characters, at most 255
    characters (kept for the download's Content-Disposition, never as a path)."""
    base = re.split(r"[/\\]", raw)[-1]
    name = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        raise BadUserInput("filename must name a file (not empty, not a path)", field="filename")
    if len(name) > MAX_FILENAME:
        raise BadUserInput(f"filename must be at most {MAX_FILENAME} characters", field="filename")
    return name


def media_type(raw: str | None) -> str:
    """``image/PNG; charset=x`` → ``image/png``."""
    return (raw or "").split(";", 1)[0].strip().lower()


def check_declared(
    settings: Settings,
    *,
    category: str,
    filename: str,
    content_type: str,
    size_bytes: int,
    sha256: str,
    contract_id: str | None,
) -> Declared:
    if category not in CATEGORY_CLASSES:
        raise BadUserInput(
            f"category must be one of {', '.join(CATEGORY_CLASSES)}", field="category"
        )
    kind = media_type(content_type)
    if kind not in {media_type(accepted) for accepted in settings.attachment_types}:
        raise BadUserInput(
            f"contentType must be one of {', '.join(settings.attachment_types)}",
            field="contentType",
        )
    limit = settings.attachment_max_bytes
    if not 1 <= size_bytes <= limit:
        raise BadUserInput(f"sizeBytes must be between 1 and {limit}", field="sizeBytes")
    digest = sha256.strip().lower()
    if not _SHA256.match(digest):
        raise BadUserInput("sha256 must be 64 hexadecimal characters", field="sha256")
    contract: uuid.UUID | None = None
    if contract_id is not None:
        try:
            contract = uuid.UUID(str(contract_id))
        except ValueError as exc:
            raise BadUserInput(NOT_A_CONTRACT, field="contractId") from exc
    return Declared(category, clean_filename(filename), kind, size_bytes, digest, contract)


def content_matches(content_type: str, head: bytes) -> bool:
    """Whether a file beginning with ``head`` is of ``content_type``."""
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    signatures = _SIGNATURES.get(content_type)
    return signatures is None or head.startswith(signatures)
