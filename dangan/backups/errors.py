"""What goes wrong with a backup, in words an operator can act on."""

from __future__ import annotations

from dangan.services.errors import DanganError


class BackupError(DanganError):
    """A backup cannot be taken, read, verified or restored; the message says why."""

    code = "CONFLICT"


class BackupMissing(BackupError):
    """No such backup: no manifest under its name (it never finished, or is not there)."""

    code = "NOT_FOUND"


class BackupBusy(BackupError):
    """Another run of this tenant's backup holds the tenant's backup lock."""
