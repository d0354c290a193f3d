"""Keeping sensitive values out of the audit trail while keeping it useful.

A sensitive value (a field of class contact, identity, financial or notes, of customers
or of their records) is stored as a keyed hash, ``hmac:<32 hex>``: HMAC-SHA256 under a
key derived from DANGAN_SECRET_KEY, so the trail can tell "the same value as" without
holding the value, and nobody without the key can test guesses against it. Passwords
are not even hashed (a keyed hash of a password is a verifier for it): they become
``"[redacted]"``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from dangan.models.archive import CUSTOMER_FIELDS
from dangan.models.records import RECORD_TYPES

HMAC_PREFIX = "hmac:"
SENSITIVE_CLASSES = frozenset({"contact", "identity", "financial", "notes"})
REDACTED = "[redacted]"
_SECRET_KEYS = frozenset({"password"})
# Free text that may hold anything (a search for a phone number, file content).
_FREE_TEXT = frozenset({"search", "contentBase64"})


def _camel(column: str) -> str:
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def _sensitive_columns() -> frozenset[str]:
    specs = [*CUSTOMER_FIELDS.items()]
    for record in RECORD_TYPES.values():
        specs += record.fields.items()
    return frozenset(column for column, spec in specs if spec.sensitivity in SENSITIVE_CLASSES)


SENSITIVE_COLUMNS = _sensitive_columns()
# Names of sensitive values in GraphQL variables (input fields are camelCase).
SENSITIVE_KEYS = frozenset(_camel(column) for column in SENSITIVE_COLUMNS) | _FREE_TEXT


def audit_key(secret_key: str) -> bytes:
    """The HMAC key of the audit trail (derived, so it is never the signing key itself)."""
    return hashlib.sha256(f"dangan-audit:{secret_key}".encode()).digest()


def keyed_hash(key: bytes, value: Any) -> str | None:
    """``hmac:<32 hex>`` of a value (None stays None: "was empty" is not sensitive)."""
    if value is None:
        return None
    data = value.encode() if isinstance(value, str) else orjson.dumps(value)
    return HMAC_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def redact_variables(key: bytes, value: Any) -> Any:
    """The variables with the same structure, sensitive values replaced by keyed hashes.

    A filter condition ``{field: "phone", value: …}`` names its field separately from
    the value: its ``value``/``values`` are hashed when the named field is sensitive.
    """
    if isinstance(value, list):
        return [redact_variables(key, item) for item in value]
    if not isinstance(value, dict):
        return value
    named = value.get("field")
    condition_on_sensitive = isinstance(named, str) and (
        named in SENSITIVE_KEYS or named in SENSITIVE_COLUMNS
    )
    redacted: dict[str, Any] = {}
    for name, item in value.items():
        if name in _SECRET_KEYS:
            redacted[name] = REDACTED
        elif name in SENSITIVE_KEYS or (condition_on_sensitive and name in ("value", "values")):
            redacted[name] = _hash_leaves(key, item)
        else:
            redacted[name] = redact_variables(key, item)
    return redacted


def _hash_leaves(key: bytes, value: Any) -> Any:
    if isinstance(value, list):
        return [_hash_leaves(key, item) for item in value]
    if isinstance(value, dict):
        return {name: _hash_leaves(key, item) for name, item in value.items()}
    return keyed_hash(key, value)
