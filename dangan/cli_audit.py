"""``dangan audit verify --tenant T``: check a tenant's audit chain (and that it holds its
checkpoints in S3), with a progress bar; ``dangan audit checkpoint``: write checkpoints;
``dangan audit prune``: let events past their retention go; ``dangan audit retention``:
a tenant's own, longer retention; ``dangan audit events`` and ``dangan audit report``
(:mod:`dangan.cli_audit_events`, :mod:`dangan.cli_audit_report`): read the trail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from dangan.audit.anchor import read_anchor, set_retention_days
from dangan.audit.checkpoints import checkpoint_tenants, open_checkpoint_store
from dangan.audit.retention import PruneReport, prune_tenant
from dangan.audit.verify import ChainReport, verify_tenant
from dangan.cli_audit_events import events as events_command
from dangan.cli_audit_report import report as report_command
from dangan.cli_records import attempt, command_log
from dangan.devstack import Endpoints
from dangan.services.errors import BadUserInput
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import run_in_tenant

audit_app = typer.Typer(help="The audit trail (审计).")
audit_app.command("events")(events_command)
audit_app.command("report")(report_command)
console = Console()
Tenant = Annotated[str | None, typer.Option(help="The tenant's slug")]
AllTenants = Annotated[bool, typer.Option("--all", help="Every tenant")]


def _one_or_all(tenant: str | None, all_tenants: bool) -> None:
    if (tenant is None) == (not all_tenants):
        console.print("give either --tenant T or --all")
        raise typer.Exit(2)


@audit_app.command("verify")
def verify(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    batch_size: Annotated[int, typer.Option(min=1, help="Events read per query")] = 5000,
    thorough: Annotated[
        bool,
        typer.Option(
            "--thorough",
            help="Read every checkpoint in S3, not only the few that vouch for the others",
        ),
    ] = False,
) -> None:
    """Recompute every kept event's hash in order, from where the chain starts (after
    its pruned events), and check the chain holds each checkpoint kept in S3 from there
    on — reading the few that vouch for the others, or every one (--thorough, or when
    something is found); print OK with the count, or the first broken link (exit
    status 1)."""
    from dangan.cli import _run_with_db, _tenant

    async def work(settings: Settings, endpoints: Endpoints) -> ChainReport:
        ref = await _tenant(tenant)
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"verifying {ref.slug}", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await verify_tenant(
                ref, store, thorough=thorough, batch_size=batch_size, on_progress=advance
            )

    report = _run_with_db(work)
    if report.broken is not None:
        console.print(
            f"BROKEN at event {report.broken.seq} ({report.broken.problem}):"
            f" {report.broken.message}; {report.events} event(s) before it are sound"
        )
        raise typer.Exit(1)
    start = (
        f"from event {report.starts_at + 1} (events 1–{report.starts_at} pruned, their"
        f" last vouched for by checkpoint {report.starts_at})"
        if report.starts_at
        else "from event 1"
    )
    console.print(
        f"OK: {report.events} event(s) {start}, chain intact up to the head;"
        f" {report.checkpoints_checked} checkpoint(s) read from S3" + (" (all)" if thorough else "")
    )


@audit_app.command("checkpoint")
def checkpoint(tenant: Tenant = None, all_tenants: AllTenants = False) -> None:
    """Write a checkpoint of the audit head to S3 (object-locked) for one tenant or all;
    a tenant whose head has not moved since its last checkpoint gets none."""
    from dangan.cli import _run_with_db, _tenant

    _one_or_all(tenant, all_tenants)

    async def work(settings: Settings, endpoints: Endpoints) -> dict[str, int | None]:
        tenants = await list_tenants() if tenant is None else [await _tenant(tenant)]
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        return await checkpoint_tenants(tenants, store, command_log(settings, "audit checkpoint"))

    for slug, seq in _run_with_db(work).items():
        done = "nothing new" if seq is None else f"checkpoint at event {seq}"
        console.print(f"{slug}: {done}")


def _pruned(report: PruneReport) -> str:
    verb = "would prune" if report.dry_run else "pruned"
    line = f"{report.tenant}: {verb} {report.events} event(s)"
    if report.anchor_after > report.anchor_before:
        line += f" ({report.anchor_before + 1}–{report.anchor_after})"
    line += f"; the chain starts after event {report.anchor_after}"
    line += f" (retention {report.retention_days} days, before {report.cutoff:%Y-%m-%d %H:%M})"
    gone = "to look at" if report.dry_run else "removed"
    if report.checkpoints_removed or report.checkpoints_locked:
        line += f"; old checkpoints {gone}: {report.checkpoints_removed}"
        if report.checkpoints_locked:
            line += f", still locked: {report.checkpoints_locked}"
    if report.refused is not None:
        line += f"; STOPPED at event {report.refused.seq}: {report.refused.message}"
    return line


@audit_app.command("prune")
def prune(
    tenant: Tenant = None,
    all_tenants: AllTenants = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Change nothing")] = False,
) -> None:
    """Delete audit events older than the retention, up to the newest checkpoint in S3
    that covers them, and the checkpoints older than where the chain then starts once
    their lock has run out. Exit status 1 if a tenant's chain stopped the prune (it is
    not pruned past what it found: run `dangan audit verify`)."""
    from dangan.cli import _run_with_db, _tenant

    _one_or_all(tenant, all_tenants)

    async def work(settings: Settings, endpoints: Endpoints) -> list[PruneReport]:
        tenants = await list_tenants() if tenant is None else [await _tenant(tenant)]
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        log = command_log(settings, "audit prune")
        reports = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            for ref in tenants:
                task = bar.add_task(f"pruning {ref.slug}", total=None)

                async def advance(done: int, total: int, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                reports.append(
                    await prune_tenant(
                        ref,
                        store,
                        settings.audit_retention_days,
                        log,
                        dry_run=dry_run,
                        on_progress=advance,
                    )
                )
        return reports

    reports = _run_with_db(work)
    for report in reports:
        console.print(_pruned(report), soft_wrap=True)
    if any(report.refused is not None for report in reports):
        raise typer.Exit(1)


@audit_app.command("retention")
def retention(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    days: Annotated[
        int | None, typer.Option(help="Keep this tenant's events this many days (longer only)")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Back to DANGAN_AUDIT_RETENTION_DAYS")
    ] = False,
) -> None:
    """Show, or set, how long a tenant's audit events are kept: the deployment's
    DANGAN_AUDIT_RETENTION_DAYS, or the tenant's own if that is longer."""
    from dangan.cli import _run_with_db, _tenant

    if days is not None and default:
        console.print("give --days N or --default, not both")
        raise typer.Exit(2)

    async def work(settings: Settings, endpoints: Endpoints) -> tuple[int, int | None]:
        ref = await _tenant(tenant)
        floor = settings.audit_retention_days
        if days is not None or default:
            if days is not None and days < floor:
                raise BadUserInput(
                    f"--days must be at least DANGAN_AUDIT_RETENTION_DAYS ({floor}):"
                    " a tenant may keep its events longer, not shorter",
                    field="days",
                )
            log = command_log(settings, "audit retention")
            details = {"retentionDays": days, "deploymentDays": floor}

            async def change() -> None:
                await set_retention_days(days)
                await log.record("audit.retention", details=details)

            await attempt(
                ref, log, "audit.retention", lambda: run_in_tenant(ref, change), details=details
            )
        anchor = await run_in_tenant(ref, read_anchor)
        return floor, anchor.retention_days

    floor, own = _run_with_db(work)
    kept = max(floor, own or 0)
    source = "its own" if own is not None and own > floor else "the deployment's"
    console.print(f"{tenant}: audit events kept {kept} days ({source})")
