"""``dangan audit events --tenant T [filters] [--csv FILE]``: read a tenant's audit
trail from a shell — the newest events as a table, or every matching one as a CSV file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dangan.cli_records import command_log
from dangan.devstack import Endpoints
from dangan.services.audit_export import write_csv
from dangan.services.audit_log import (
    AuditFilter,
    AuditRecord,
    Matching,
    iter_events,
    matching_events,
)
from dangan.settings import Settings
from dangan.tenants.scope import run_in_tenant

console = Console()


EVENT_COLUMNS = ("seq", "at", "actor", "operation", "actions", "outcome", "customers")


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
            await command_log(settings, "audit events").record("audit.events", details=details)
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
