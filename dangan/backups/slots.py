"""Backup ids: one per tenant and slot, so a job delivered twice makes one backup.

A scheduled backup's slot is its day (``d20261123``), an on-demand one's its minute
(``m20261123T1950``): asking twice in the same minute yields the same backup. Ids sort
by time within a kind and are safe as object-key segments and arq job ids.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dangan.backups.errors import BackupError

KINDS = {"scheduled": "d", "manual": "m"}
_ID = re.compile(r"^(d\d{8}|m\d{8}T\d{4})$")


def backup_id(kind: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    if kind == "scheduled":
        return at.strftime("d%Y%m%d")
    if kind == "manual":
        return at.strftime("m%Y%m%dT%H%M")
    raise ValueError(f"unknown backup kind {kind!r}")


def check_backup_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise BackupError(
            f"{value!r} is not a backup id (d<yyyymmdd> or m<yyyymmdd>T<hhmm>;"
            " `dangan backup list` shows them)"
        )
    return value


def job_id(namespace: str, slug: str, backup: str) -> str:
    """The arq job id of a tenant's backup in a slot."""
    return f"{namespace}:backup:{slug}:{backup}"
