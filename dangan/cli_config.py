"""Every ``dangan`` command starts by reading its settings: a setting out of bounds
(``DANGAN_AUDIT_RETENTION_DAYS=90``) stops it with the setting's own message, exit 2."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from dangan.settings import get_settings

err = Console(stderr=True)


def check_configuration() -> None:
    """Dangan (档案): multi-tenant customer archives."""
    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            err.print(f"[red]configuration error:[/red] {message}", soft_wrap=True)
        raise typer.Exit(2) from exc
