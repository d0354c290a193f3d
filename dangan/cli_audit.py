"""``dangan audit verify --tenant T``: check a tenant's audit chain (and that it holds its
checkpoints in S3), with a progress bar; ``dangan audit checkpoint``: write checkpoints;
``dangan audit report``: the tenant's compliance report for a period, as a file;
``dangan audit events --tenant T [filters] [--csv FILE]``: read the trail."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dangan.audit.actions import record_action
from dangan.audit.checkpoints import checkpoint_tenants, list_checkpoints, open_checkpoint_store
from dangan.audit.verify import ChainReport, verify_chain
from dangan.devstack import Endpoints
from dangan.services.audit_export import write_csv
from dangan.services.audit_log import (
    AuditFilter,
    AuditRecord,
    Matching,
    iter_events,
    matching_events,
)
from dangan.services.compliance import ComplianceReport, build_report, check_period, render_report
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import run_in_tenant

audit_app = typer.Typer(help="The audit trail (审计).")
console = Console()


@audit_app.command("verify")
def verify(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    batch_size: Annotated[int, typer.Option(min=1, help="Events read per query")] = 5000,
) -> None:
    """Recompute every event's hash in order and check the chain holds each checkpoint
    kept in S3; print OK with the count, or the first broken link (exit status 1)."""
    from dangan.cli import _run_with_db, _tenant

    async def work(settings: Settings, endpoints: Endpoints) -> ChainReport:
        ref = await _tenant(tenant)
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        checkpoints = await list_checkpoints(ref, store)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"verifying {ref.slug}", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await verify_chain(
                ref, checkpoints=checkpoints, batch_size=batch_size, on_progress=advance
            )

    report = _run_with_db(work)
    if report.broken is not None:
        console.print(
            f"BROKEN at event {report.broken.seq} ({report.broken.problem}):"
            f" {report.broken.message}; {report.events} event(s) before it are sound"
        )
        raise typer.Exit(1)
    console.print(f"OK: {report.events} event(s), chain intact up to the head")


@audit_app.command("checkpoint")
def checkpoint(
    tenant: Annotated[str | None, typer.Option(help="The tenant's slug")] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Every tenant")] = False,
) -> None:
    """Write a checkpoint of the audit head to S3 (object-locked) for one tenant or all;
    a tenant whose head has not moved since its last checkpoint gets none."""
    from dangan.cli import _run_with_db, _tenant

    if (tenant is None) == (not all_tenants):
        console.print("give either --tenant T or --all")
        raise typer.Exit(2)

    async def work(settings: Settings, endpoints: Endpoints) -> dict[str, int | None]:
        tenants = await list_tenants() if tenant is None else [await _tenant(tenant)]
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        return await checkpoint_tenants(tenants, store)

    for slug, seq in _run_with_db(work).items():
        done = "nothing new" if seq is None else f"checkpoint at event {seq}"
        console.print(f"{slug}: {done}")


def _moment(value: str, option: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            "give a date (2025-01-01) or a time (2025-01-01T08:00+08:00)", param_hint=option
        ) from exc


@audit_app.command("report")
def report(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    start: Annotated[
        str, typer.Option("--from", help="Start, included: a date or ISO time (no offset: UTC)")
    ],
    end: Annotated[str, typer.Option("--to", help="End, excluded; at most 366 days after")],
    format: Annotated[str, typer.Option(help="json, csv or html (a printable page)")] = "html",
    out: Annotated[str, typer.Option(help="The file to write; - for standard output")] = "-",
) -> None:
    """Write the tenant's compliance report (合规审查) for a period: activity by role and
    actor, approvals, exports, shares, reveals, policy changes, backups, and the audit
    chain verified now. Recorded in the trail as the command ``audit.report``."""
    from dangan.cli import _run_with_db, _tenant

    kind = format.upper()
    if kind not in ("JSON", "CSV", "HTML"):
        raise typer.BadParameter("json, csv or html", param_hint="--format")
    first, last = _moment(start, "--from"), _moment(end, "--to")

    async def work(settings: Settings, endpoints: Endpoints) -> ComplianceReport:
        ref = await _tenant(tenant)
        period = check_period(first, last)
        store = await open_checkpoint_store(s3_client(endpoints), settings)
        checkpoints = await list_checkpoints(ref, store)

        async def build() -> ComplianceReport:
            built = await build_report(ref, period, checkpoints, "dangan audit report (command)")
            details = {"from": period.start.isoformat(), "to": period.end.isoformat()}
            await record_action(
                settings.secret_key,
                "audit.report",
                origin="cli",
                details={**details, "format": kind},
            )
            return built

        return await run_in_tenant(ref, build)

    built = _run_with_db(work)
    data = render_report(built, kind)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    Path(out).write_bytes(data)
    chain = built.audit_chain
    verdict = (
        f"audit chain OK ({chain.events_verified} events)"
        if chain.ok
        else f"audit chain BROKEN at event {chain.broken_seq} ({chain.problem})"
    )
    console.print(
        f"wrote {out} ({len(data)} bytes): {built.activity.total.events} event(s) in the period;"
        f" {verdict}"
    )


EVENT_COLUMNS = ("seq", "at", "actor", "operation", "actions", "outcome", "customers")


@audit_app.command("events")
def events(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    actor_kind: Annotated[str | None, typer.Option(help="user | app | anonymous | system")] = None,
    actor_id: Annotated[int | None, typer.Option(help="With --actor-kind")] = None,
    actor_name: Annotated[str | None, typer.Option(help="The actor's name as recorded")] = None,
    customer: Annotated[str | None, typer.Option(help="Events that returned this customer")] = None,
    action: Annotated[str | None, typer.Option(help="customers, revealField, export.run …")] = None,
    operation_type: Annotated[
        str | None, typer.Option(help="query | mutation | refused | job | cli")
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="ok | error")] = None,
    start: Annotated[
        datetime | None, typer.Option("--from", help="From this time, UTC (inclusive)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option("--to", help="Up to this time, UTC (exclusive)")
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write every matching event to this CSV file")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Events listed without --csv")] = 20,
) -> None:
    """List a tenant's audit events, newest first, or write them all to a CSV file (with a
    progress bar). The command's own read is recorded in the trail (audit.events)."""
    from dangan.cli import _run_with_db, _tenant

    where = AuditFilter(
        actor_kind=actor_kind,
        actor_id=actor_id,
        actor_name=actor_name,
        customer=customer,
        action=action,
        operation_type=operation_type,
        outcome=outcome,
        start=start,
        end=end,
    )
    if csv_file is not None and (not csv_file.parent.is_dir() or csv_file.is_dir()):
        console.print(f"cannot write {csv_file}")
        raise typer.Exit(2)

    async def work(settings: Settings, endpoints: Endpoints) -> tuple[int, list[AuditRecord]]:
        ref = await _tenant(tenant)
        details = {**where.described(), "csv": csv_file is not None}

        async def read() -> tuple[int, list[AuditRecord]]:
            matching = await matching_events(where)
            shown: list[AuditRecord] = []
            if csv_file is None:
                async for batch in iter_events(where, upto=matching.newest, batch=limit):
                    shown = batch
                    break
            else:
                await _write(csv_file, ref.slug, where, matching)
            await record_action(settings.secret_key, "audit.events", origin="cli", details=details)
            return matching.events, shown

        return await run_in_tenant(ref, read)

    count, shown = _run_with_db(work)
    if csv_file is not None:
        console.print(f"{count} event(s) written to {csv_file}")
        return
    table = Table(*EVENT_COLUMNS)
    for record in shown:
        actor = f"{record.actor_kind}:{record.actor_id or '-'} {record.actor_name or ''}".strip()
        operation = f"{record.operation_type} {record.operation_name or ''}".strip()
        table.add_row(
            str(record.seq),
            record.at.isoformat(timespec="seconds"),
            actor,
            operation,
            ",".join(record.actions),
            record.outcome,
            str(record.customer_count),
        )
    console.print(table)
    console.print(f"{len(shown)} of {count} matching event(s)")


async def _write(path: Path, slug: str, where: AuditFilter, matching: Matching) -> None:
    """The CSV next to ``path`` first, renamed into place when complete (the caller's
    transaction, with the command's event, commits after)."""
    partial = path.with_name(path.name + ".partial")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("exporting", total=matching.events)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with partial.open("w", encoding="utf-8-sig", newline="") as out:
            await write_csv(
                out, where, matching, tenant=slug, reader="dangan audit events", progress=advance
            )
    partial.replace(path)
