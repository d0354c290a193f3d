"""``dangan backup run | list | verify | prune | schedule``: take a tenant's backup now (progress
bar), list the catalogue, read a backup back and check every checksum, apply the
keep-policy (``restore`` and ``drill``:
:mod:`dangan.cli_restore`). Each is recorded in the tenant's audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from dangan.backups import writer
from dangan.backups.catalogue import BackupRecord, list_backups
from dangan.backups.pruning import PruneReport, prune_backups
from dangan.backups.reader import VerifyReport
from dangan.backups.schedule import Schedule, set_schedule, tenant_schedule
from dangan.backups.slots import backup_id
from dangan.backups.store import open_configured_store
from dangan.backups.verification import verify_and_record
from dangan.backups.writer import BackupOutcome, BackupProgress
from dangan.cli_records import attempt, command_log
from dangan.cli_restore import backup_option, drill, restore
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import TenantRef

backup_app = typer.Typer(help="Backups (备份): run, list, verify, restore, drill.")
backup_app.command("restore")(restore)
backup_app.command("drill")(drill)
console = Console()
# Listings keep their columns whole when piped (a terminal gives its own width).
wide = Console(width=None if console.is_terminal else 160)
Tenant = Annotated[str | None, typer.Option(help="The tenant's slug")]
AllTenants = Annotated[bool, typer.Option("--all", help="Every tenant")]
OneTenant = Annotated[str, typer.Option(help="The tenant's slug")]
BackupId = Annotated[str, typer.Option("--backup", help="The backup's id (see `backup list`)")]


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@backup_app.command("run")
def run(tenant: Tenant = None, all_: AllTenants = False) -> None:
    """Back a tenant (or every tenant) up now, while the API goes on serving: one
    consistent snapshot, sealed and streamed to the backup bucket, manifest last. Run
    twice in the same minute, it makes one backup."""
    from dangan.cli import _run_with_db, _tenant

    if all_ == (tenant is not None):
        raise typer.BadParameter("give either --tenant or --all")

    async def work(settings: Settings, endpoints: Endpoints) -> list[BackupOutcome]:
        tenants = await list_tenants() if all_ else [await _tenant(tenant or "")]
        store = await open_configured_store(settings, endpoints)
        source = ObjectStore(s3_client(endpoints), settings.s3_bucket)
        log = command_log(settings, "backup run")
        outcomes = []
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows  {task.fields[size]}"),
        )
        with Progress(*columns, console=console) as bar:
            for ref in tenants:
                task = bar.add_task(f"{ref.slug}", total=None, rows=0, size="0 B")

                async def advance(step: BackupProgress, task: TaskID = task) -> None:
                    bar.update(
                        task,
                        completed=step.tables_done,
                        total=step.tables,
                        rows=step.rows,
                        size=_size(step.bytes),
                        description=f"{bar.tasks[task].description.split()[0]} {step.stage}",
                    )

                async def one(
                    ref: TenantRef = ref, advance: writer.Progress = advance
                ) -> BackupOutcome:
                    backup = backup_id("manual", datetime.now(UTC))
                    return await writer.run_backup(
                        settings, store, source, ref, backup, "manual", log, advance
                    )

                outcomes.append(await attempt(ref, log, "backup.run", one))
        return outcomes

    for outcome in _run_with_db(work):
        record = outcome.record
        made = "made" if outcome.made else "already there (same minute)"
        console.print(
            f"{record.tenant}: backup {record.id} {made} — {record.tables} tables,"
            f" {record.rows} rows, {record.attachments} files,"
            f" {_size(record.stored_bytes)} stored"
        )


@backup_app.command("list")
def list_(
    tenant: Tenant = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first")] = 50,
) -> None:
    """The catalogue: finished backups, newest first (a backup is listed only once its
    manifest is written). Ids: d<date> scheduled, m<date>T<time> on demand."""
    from dangan.cli import _run_with_db, _tenant

    async def work(settings: Settings, endpoints: Endpoints) -> list[BackupRecord]:
        ref = await _tenant(tenant) if tenant else None
        return await list_backups(ref.id if ref else None, limit=limit)

    records = _run_with_db(work)
    table = Table(box=None, pad_edge=False)
    for name in ("tenant", "backup", "finished UTC", "tables", "rows", "files", "stored"):
        table.add_column(name, no_wrap=True)
    for name in ("locked to", "verified", "drill"):
        table.add_column(name, no_wrap=True)
    for r in records:
        table.add_row(
            r.tenant,
            r.id,
            f"{r.finished_at:%Y-%m-%d %H:%M}",
            str(r.tables),
            str(r.rows),
            str(r.attachments),
            _size(r.stored_bytes),
            f"{r.locked_until:%Y-%m-%d}" if r.locked_until else "-",
            _check(r.verified_at, r.verify_error),
            _check(r.drilled_at, r.drill_error),
        )
    wide.print(table if records else "no backups yet (`dangan backup run --tenant T`)")


def _check(at: datetime | None, error: str | None) -> str:
    if at is None:
        return "-"
    return f"{'FAILED' if error else 'ok'} {at:%Y-%m-%d}"


@backup_app.command("verify")
def verify(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")], backup: BackupId
) -> None:
    """Download and decrypt a backup and check every table's row count and SHA-256 and
    every file's against its manifest; exit status 1 if anything differs."""
    from dangan.cli import _run_with_db, _tenant

    backup_option(backup)

    async def work(settings: Settings, endpoints: Endpoints) -> VerifyReport:
        ref = await _tenant(tenant)
        store = await open_configured_store(settings, endpoints)
        log = command_log(settings, "backup verify")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"verifying {ref.slug} {backup}", total=None)

            def checked(stream: str) -> None:
                bar.advance(task)

            async def check() -> VerifyReport:
                return await verify_and_record(settings, store, ref, backup, log, checked)

            return await attempt(ref, log, "backup.verify", check)

    report = _run_with_db(work)
    if report.ok:
        console.print(
            f"OK: {report.tenant} {report.backup} — {report.tables} tables, {report.rows} rows,"
            f" {report.attachments} files, every checksum matches"
        )
        return
    console.print(f"[red]PROBLEMS[/red] in {report.tenant} {report.backup}:")
    for problem in report.problems:
        console.print(f"  - {problem}")
    raise typer.Exit(1)


@backup_app.command("prune")
def prune(
    tenant: Tenant = None,
    all_: AllTenants = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing")
    ] = False,
) -> None:
    """Apply the keep-policy now (the nightly upkeep does it too): lock each kept backup
    until its keep-until, remove the dropped ones whose lock has ended (manifest first),
    and a crashed run's leftovers after a day."""
    from dangan.cli import _run_with_db, _tenant

    if all_ == (tenant is not None):
        raise typer.BadParameter("give either --tenant or --all")

    async def work(settings: Settings, endpoints: Endpoints) -> list[PruneReport]:
        tenants = await list_tenants() if all_ else [await _tenant(tenant or "")]
        store = await open_configured_store(settings, endpoints)
        log = command_log(settings, "backup prune")
        reports = []
        for ref in tenants:

            async def one(ref: TenantRef = ref) -> PruneReport:
                return await prune_backups(
                    settings, store, ref, datetime.now(UTC), log, dry_run=dry_run
                )

            reports.append(await attempt(ref, log, "backup.prune", one))
        return reports

    for report in _run_with_db(work):
        verb = "would remove" if report.dry_run else "removed"
        console.print(
            f"{report.tenant}: kept {len(report.kept)}, {verb} {len(report.removed)}"
            f"{': ' + ', '.join(report.removed) if report.removed else ''};"
            f" {len(report.waiting)} waiting for their lock to end,"
            f" {len(report.orphans)} leftover(s) of crashed runs"
        )
        for keeper in report.kept:
            console.print(
                f"  keep {keeper.id} until {keeper.until:%Y-%m-%d} ({', '.join(keeper.reasons)})"
            )
        for problem in report.problems:
            console.print(f"  [red]problem:[/red] {problem}")


@backup_app.command("schedule")
def schedule(
    tenant: OneTenant,
    at: Annotated[str | None, typer.Option(help="Its own daily time, HH:MM UTC")] = None,
    off: Annotated[bool, typer.Option("--off", help="No scheduled backups")] = False,
    default: Annotated[bool, typer.Option("--default", help="Back to the default time")] = False,
) -> None:
    """Show or set when the tenant's scheduled backup starts each day (UTC): its own
    time, the deployment's default (DANGAN_BACKUP_HOUR:MINUTE), or off."""
    from dangan.cli import _run_with_db, _tenant

    if sum((at is not None, off, default)) > 1:
        raise typer.BadParameter("give at most one of --at, --off, --default")
    hour = minute = None
    if at is not None:
        try:
            hour, minute = (int(part) for part in at.split(":"))
        except ValueError as exc:
            raise typer.BadParameter("--at takes HH:MM, e.g. 02:30") from exc

    async def work(settings: Settings, endpoints: Endpoints) -> Schedule:
        ref = await _tenant(tenant)
        if at is not None or off or default:
            await set_schedule(ref, hour=hour, minute=minute or 0, enabled=not off)
        return await tenant_schedule(settings, ref)

    console.print(f"{tenant}: scheduled backups {_run_with_db(work).describe()}")
