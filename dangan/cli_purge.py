"""``dangan purge run [--tenant T | --all] [--dry-run] [--now ISO]``: a retention run now
(mark, then destroy what is past its grace period), with a progress bar; ``--dry-run``
lists what would be marked, unmarked and destroyed, and why, and changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from dangan.cli_records import command_log, os_user
from dangan.devstack import Endpoints
from dangan.services.retention import (
    CandidateLine,
    GroupOutcome,
    Purger,
    RetentionReport,
    retention_ready,
    run_retention,
)
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.registry import list_tenants

purge_app = typer.Typer(help="Retention purges (定期清理, 销毁须登记).")
console = Console()


def _clock(now: str | None) -> datetime | None:
    if now is None:
        return None
    try:
        parsed = datetime.fromisoformat(now)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date and time: {now!r}", param_hint="--now") from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            "give a time zone, e.g. 2030-01-31T04:00:00+08:00", param_hint="--now"
        )
    return parsed


@purge_app.command("run")
def run(
    tenant: Annotated[str | None, typer.Option(help="One tenant's slug")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every tenant")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be destroyed and why; change nothing")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            help="Read the rules as at this time (ISO, with a time zone) instead of now;"
            " recorded as asOf in every destruction record"
        ),
    ] = None,
) -> None:
    """Mark what the tenant's retention rules apply to (notifying owners), unmark what
    they no longer do, and destroy what has been marked longer than its grace period:
    what the nightly job does, now. Each destruction leaves a destruction record."""
    from dangan.cli import _run_with_db, _tenant

    if all_ == (tenant is not None):
        raise typer.BadParameter("give either --tenant or --all")
    clock = _clock(now)

    async def work(settings: Settings, endpoints: Endpoints) -> list[RetentionReport]:
        tenants = await list_tenants() if all_ else [await _tenant(tenant or "")]
        objects = ObjectStore(s3_client(endpoints), settings.s3_bucket)
        log = command_log(settings, "purge run")
        purger = Purger(settings.secret_key, log, "cli", os_user())
        reports = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            for ref in tenants:
                if not retention_ready(ref):
                    console.print(f"{ref.slug}: schema version {ref.schema_version}, skipped")
                    continue
                task = bar.add_task(f"purging {ref.slug}", total=None)

                async def advance(done: int, total: int, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                reports.append(
                    await run_retention(
                        ref, objects, purger, as_of=clock, dry_run=dry_run, on_progress=advance
                    )
                )
        return reports

    for report in _run_with_db(work):
        _print(report)


def _what(line: CandidateLine) -> str:
    kind = line.record_type.replace("_", " ")
    if line.record_type == "communication" and line.customer_id is not None:
        return f"{kind} {line.record_id} of customer {line.customer_id}"
    return f"{kind} {line.record_id}"


def _counts(outcome: GroupOutcome) -> str:
    return ", ".join(f"{table} {n}" for table, n in outcome.counts.items() if n)


def _print(report: RetentionReport) -> None:
    verb = "would be" if report.dry_run else "were"
    clock = report.as_of.isoformat(timespec="seconds")
    console.print(f"[bold]{report.tenant}[/bold] as of {clock}" + (" (dry run)" * report.dry_run))
    table = Table("action", "rule", "what", "why", "due / rows")
    for outcome in report.destructions:
        rows = _counts(outcome)
        if outcome.record_id is not None:
            rows = f"destruction record {outcome.record_id}: {rows}"
        for index, line in enumerate(outcome.destroyed):
            table.add_row("destroy", line.rule, _what(line), line.reason, "" if index else rows)
    for line in report.waiting:
        table.add_row("wait", line.rule, _what(line), "awaiting approval", _due(line))
    for line in report.marked:
        table.add_row("mark", line.rule, _what(line), line.reason, _due(line))
    for line in report.unmarked:
        table.add_row("unmark", line.rule, _what(line), line.reason, "")
    if table.row_count:
        console.print(table)
    destroyed = sum(len(outcome.destroyed) for outcome in report.destructions)
    console.print(
        f"{destroyed} record(s) {verb} destroyed ({len(report.destructions)} destruction"
        f" record(s)), {len(report.marked)} {verb} marked, {len(report.unmarked)} {verb}"
        f" unmarked, {len(report.waiting)} awaiting approval"
        + (
            f"; attachment files removed: {report.objects_removed},"
            f" left for the next run: {report.objects_failed}"
            if not report.dry_run
            else ""
        ),
        soft_wrap=True,
    )


def _due(line: CandidateLine) -> str:
    return line.due_at.date().isoformat() if line.due_at is not None else ""
