"""``dangan audit verify --tenant T``: check a tenant's audit chain (and that it holds its
checkpoints in S3), with a progress bar; ``dangan audit checkpoint``: write checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dangan.audit.checkpoints import checkpoint_tenants, list_checkpoints, open_checkpoint_store
from dangan.audit.verify import ChainReport, verify_chain
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.registry import list_tenants

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
