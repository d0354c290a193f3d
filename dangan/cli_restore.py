"""``dangan backup restore`` (over the tenant, or ``--as`` a new one) and ``dangan backup
drill`` (a restore into a scratch schema, then dropped), with progress; both recorded in
the tenant's audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dangan.backups.catalogue import list_backups
from dangan.backups.errors import BackupError, BackupMissing
from dangan.backups.restore import (
    RestoreReport,
    Step,
    drill_backup,
    restore_as_new,
    restore_backup,
)
from dangan.backups.slots import check_backup_id
from dangan.backups.store import open_configured_store
from dangan.cli_records import attempt, command_log
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import TenantRef

console = Console()
OneTenant = Annotated[str, typer.Option(help="The tenant's slug")]
BackupId = Annotated[str, typer.Option("--backup", help="The backup's id (see `backup list`)")]


def backup_option(value: str) -> str:
    """A backup id given on the command line, checked before anything is started."""
    try:
        return check_backup_id(value)
    except BackupError as exc:
        raise typer.BadParameter(exc.message, param_hint="--backup") from exc


def restore(
    tenant: OneTenant,
    backup: BackupId,
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Restore into a new tenant of this slug, beside the live one"),
    ] = None,
    keep_days: Annotated[
        int | None,
        typer.Option(min=0, help="Days to keep the replaced schema (default: the setting)"),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Restore a backup: unpack and check it, load it into a fresh schema at its version
    (migrated forward if older), verify every count and checksum, then swap it in over
    the tenant (the replaced schema is kept renamed, the audit trail carried over) — or,
    with --as, into a new tenant. Nothing changes unless all of it succeeds."""
    from dangan.cli import _run_with_db, _tenant

    backup_option(backup)
    if as_ is None and not yes:
        typer.confirm(
            f"Replace tenant {tenant}'s data with backup {backup}? Changes made since the"
            " backup stay only in the replaced schema",
            abort=True,
        )

    async def work(settings: Settings, endpoints: Endpoints) -> RestoreReport:
        ref = await _tenant(tenant)
        store = await open_configured_store(settings, endpoints)
        objects = ObjectStore(s3_client(endpoints), settings.s3_bucket)
        log = command_log(settings, "backup restore")
        with _steps() as step:
            if as_ is not None:
                return await restore_as_new(
                    settings, store, objects, ref, backup, as_, log, step=step
                )
            days = settings.restore_keep_days if keep_days is None else keep_days

            async def swap() -> RestoreReport:
                return await restore_backup(
                    settings, store, objects, ref, backup, log, keep_days=days, step=step
                )

            return await attempt(ref, log, "backup.restore", swap)

    report = _run_with_db(work)
    console.print(
        f"restored {report.backup} into {report.tenant}: {report.tables} tables,"
        f" {report.rows} rows (schema version {report.from_version}"
        f"{f' → {report.to_version}' if report.to_version != report.from_version else ''}),"
        f" {report.files_written} file(s) put back"
    )
    again = {kind: n for kind, n in report.destroyed_again.items() if n}
    if again:
        console.print(
            "destroyed since the backup, and destroyed again: "
            + ", ".join(f"{n} {kind.replace('_', ' ')}(s)" for kind, n in again.items())
            + f"; {report.files_kept_out} file(s) not put back"
        )
    if report.retired is not None:
        console.print(
            f"the replaced schema is kept as {report.retired.schema_name} until"
            f" {report.retired.drop_after:%Y-%m-%d %H:%M} UTC"
        )


def drill(
    tenant: OneTenant,
    backup: Annotated[
        str | None, typer.Option("--backup", help="The backup's id (default: the newest)")
    ] = None,
) -> None:
    """Restore drill: load a backup into a scratch schema, verify every count and
    checksum, drop the schema. The tenant is not touched; the outcome is recorded in the
    catalogue and the audit trail. Exit status 1 if the backup would not restore."""
    from dangan.cli import _run_with_db, _tenant

    if backup is not None:
        backup_option(backup)

    async def work(settings: Settings, endpoints: Endpoints) -> RestoreReport:
        ref = await _tenant(tenant)
        chosen = backup or await _newest(ref)
        store = await open_configured_store(settings, endpoints)
        with _steps() as step:
            return await drill_backup(
                settings, store, ref, chosen, command_log(settings, "backup drill"), step=step
            )

    report = _run_with_db(work)
    console.print(
        f"OK: {report.backup} of {report.tenant} restores — {report.tables} tables,"
        f" {report.rows} rows loaded and verified in a scratch schema, then dropped"
    )


async def _newest(tenant: TenantRef) -> str:
    found = await list_backups(tenant.id, limit=1)
    if not found:
        raise BackupMissing(f"{tenant.slug} has no backup yet (`dangan backup run`)")
    return found[0].id


@contextmanager
def _steps() -> Iterator[Step]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        async def step(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield step
