"""The manifest: what a backup holds, written last (its presence means "complete").

Stored as JSON at ``backups/<tenant>/<id>/manifest.json``, next to the sealed objects
``data`` (the tables, in snapshot order) and ``attachments`` (the files of stored
attachments). It names the tables with their row counts, byte counts and SHA-256 (of the
``COPY`` text, as a restore reads it back), the sequences' positions, the schema
version, the wrapped data key and its master key id, sizes and duration. An HMAC under
the data key covers the whole body, so an edited manifest is refused before anything
is restored from it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dangan.backups.errors import BackupError

FORMAT = 1
PREFIX = "backups"


def backup_prefix(slug: str, backup_id: str) -> str:
    return f"{PREFIX}/{slug}/{backup_id}/"


def manifest_key(slug: str, backup_id: str) -> str:
    return backup_prefix(slug, backup_id) + "manifest.json"


@dataclass(frozen=True)
class TableEntry:
    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class AttachmentEntry:
    key: str  # the object's key in the main bucket
    bytes: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    version_id: str | None
    stored_bytes: int


@dataclass(frozen=True)
class Manifest:
    tenant: str
    tenant_id: int
    backup_id: str
    kind: str
    schema_version: int
    master_key_id: str
    wrapped_key: str  # hex
    started_at: str  # ISO 8601, UTC
    finished_at: str
    duration_ms: int
    tables: list[TableEntry]
    sequences: dict[str, list[Any]]  # name -> [last_value, is_called]
    attachments: list[AttachmentEntry]
    missing_attachments: list[str]  # rows whose object was not in the bucket
    objects: dict[str, ObjectEntry]  # "data", "attachments"
    format: int = FORMAT
    mac: str = field(default="", compare=False)

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def plain_bytes(self) -> int:
        return sum(table.bytes for table in self.tables) + sum(a.bytes for a in self.attachments)

    @property
    def stored_bytes(self) -> int:
        return sum(entry.stored_bytes for entry in self.objects.values())

    def signed(self, data_key: bytes) -> Manifest:
        return _replace_mac(self, _mac(data_key, self))

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _body(manifest: Manifest) -> bytes:
    body = asdict(manifest)
    body.pop("mac")
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _mac(data_key: bytes, manifest: Manifest) -> str:
    return hmac.new(data_key, b"dangan-manifest\x00" + _body(manifest), hashlib.sha256).hexdigest()


def _replace_mac(manifest: Manifest, mac: str) -> Manifest:
    return Manifest(**{**manifest.__dict__, "mac": mac})


def decode_manifest(raw: bytes, where: str) -> Manifest:
    """Parse a manifest (its MAC is checked by :func:`check_mac` once the key is open)."""
    try:
        body = orjson.loads(raw)
        if body.get("format") != FORMAT:
            raise BackupError(f"{where}: manifest format {body.get('format')!r} is not known")
        return Manifest(
            **{
                **body,
                "tables": [TableEntry(**t) for t in body["tables"]],
                "attachments": [AttachmentEntry(**a) for a in body["attachments"]],
                "objects": {k: ObjectEntry(**o) for k, o in body["objects"].items()},
            }
        )
    except BackupError:
        raise
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise BackupError(f"{where}: the manifest is damaged ({exc})") from exc


def check_mac(manifest: Manifest, data_key: bytes, where: str) -> None:
    if not hmac.compare_digest(manifest.mac, _mac(data_key, manifest)):
        raise BackupError(f"{where}: the manifest was altered (its MAC does not match)")
