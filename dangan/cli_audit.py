"""``dangan audit verify --tenant T``: check a tenant's audit chain, with a progress bar."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dangan.audit.verify import ChainReport, verify_chain
from dangan.devstack import Endpoints
from dangan.settings import Settings

audit_app = typer.Typer(help="The audit trail (审计).")
console = Console()


@audit_app.command("verify")
def verify(
    tenant: Annotated[str, typer.Option(help="The tenant's slug")],
    batch_size: Annotated[int, typer.Option(min=1, help="Events read per query")] = 5000,
) -> None:
    """Recompute every event's hash in order; print OK with the count, or the first
    broken link (exit status 1)."""
    from dangan.cli import _run_with_db, _tenant

    async def work(settings: Settings, endpoints: Endpoints) -> ChainReport:
        ref = await _tenant(tenant)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"verifying {ref.slug}", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await verify_chain(ref, batch_size=batch_size, on_progress=advance)

    report = _run_with_db(work)
    if report.broken is not None:
        console.print(
            f"BROKEN at event {report.broken.seq} ({report.broken.problem}):"
            f" {report.broken.message}; {report.events} event(s) before it are sound"
        )
        raise typer.Exit(1)
    console.print(f"OK: {report.events} event(s), chain intact up to the head")
