"""What goes wrong with a backup, in words an operator can act on."""

from __future__ import annotations


class BackupError(Exception):
    """A backup cannot be taken, read, verified or restored; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
