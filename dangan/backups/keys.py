"""Backup keys: the master keys from settings, and each tenant's data key wrapped under
the current one (``public.backup_key``).

A tenant has one data key for all its backups. It is generated on the tenant's first
backup, stored only wrapped, and re-wrapped when the master key changes (the old master
key stays readable through ``DANGAN_BACKUP_RETIRED_MASTER_KEYS`` until every backup
wrapped under it has expired). Every manifest carries the wrapped key and the master
key's id, so the bucket alone and the master key restore a tenant whose database is
lost; deleting the tenant's row makes its backups unreadable for good.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise import connections

from dangan.backups.errors import BackupError
from dangan.backups.sealing import KEY_BYTES, SealError, new_data_key, unwrap_key, wrap_key
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef

DERIVED_KEY_ID = "derived-from-secret-key"


@dataclass(frozen=True)
class DataKey:
    key: bytes
    wrapped: bytes
    master_key_id: str


def master_keys(settings: Settings) -> tuple[str, dict[str, bytes]]:
    """The current master key's id, and every master key known by id."""
    keys = {
        key_id: _decode(f"DANGAN_BACKUP_RETIRED_MASTER_KEYS[{key_id!r}]", value)
        for key_id, value in settings.backup_retired_master_keys.items()
    }
    if settings.backup_master_key:
        current = settings.backup_master_key_id
        keys[current] = _decode("DANGAN_BACKUP_MASTER_KEY", settings.backup_master_key)
    else:
        current = DERIVED_KEY_ID
        keys[current] = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"dangan backup master"
        ).derive(settings.secret_key.encode())
    return current, keys


def _decode(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BackupError(f"{name} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise BackupError(f"{name} must be {KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def open_data_key(settings: Settings, wrapped: bytes, master_key_id: str) -> bytes:
    """Unwrap a data key recorded in a manifest or in ``public.backup_key``."""
    _, keys = master_keys(settings)
    master = keys.get(master_key_id)
    if master is None:
        raise BackupError(
            f"the backup's data key is wrapped under master key {master_key_id!r}, which"
            " this installation does not have (set DANGAN_BACKUP_MASTER_KEY with that id,"
            " or add it to DANGAN_BACKUP_RETIRED_MASTER_KEYS)"
        )
    try:
        return unwrap_key(master, wrapped, master_key_id)
    except SealError as exc:
        raise BackupError(f"wrong master key: {exc}") from exc


async def tenant_data_key(settings: Settings, tenant: TenantRef) -> DataKey:
    """The tenant's data key, made on first use and re-wrapped under the current master
    key if an older one wraps it."""
    current, keys = master_keys(settings)
    db = connections.get("default")
    rows = await db.execute_query_dict(
        "SELECT master_key_id, wrapped FROM public.backup_key WHERE tenant_id = $1", [tenant.id]
    )
    if not rows:
        wrapped = wrap_key(keys[current], new_data_key(), current)
        await db.execute_query(
            "INSERT INTO public.backup_key (tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) DO NOTHING",
            [tenant.id, current, wrapped],
        )
        return await tenant_data_key(settings, tenant)
    master_key_id, wrapped = rows[0]["master_key_id"], bytes(rows[0]["wrapped"])
    key = open_data_key(settings, wrapped, master_key_id)
    if master_key_id != current:
        rewrapped = wrap_key(keys[current], key, current)
        await db.execute_query(
            "UPDATE public.backup_key SET master_key_id = $2, wrapped = $3, rewrapped_at = now()"
            " WHERE tenant_id = $1 AND master_key_id = $4",
            [tenant.id, current, rewrapped, master_key_id],
        )
        return DataKey(key, rewrapped, current)
    return DataKey(key, wrapped, master_key_id)
