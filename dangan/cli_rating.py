"""``dangan rating run --tenant T | --all``: rate every customer now, with a progress bar
(each tenant's run recorded in its audit trail as ``rating.run``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from dangan.cli_records import command_log
from dangan.devstack import Endpoints
from dangan.services.rating import rate_all_customers
from dangan.settings import Settings
from dangan.tenants.registry import list_tenants
from dangan.tenants.scope import TenantRef
from dangan.workers.rating import record_rating_run

rating_app = typer.Typer(help="Customer ratings (客户评级).")
console = Console()
Advance = Callable[[int, int], Awaitable[None]]


@rating_app.command("run")
def run(
    tenant: Annotated[str | None, typer.Option(help="One tenant's slug")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every tenant")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Customers per transaction")] = 500,
) -> None:
    """Rate every customer of a tenant (or of all) now; history grows only where the
    score or grade moved, so running it twice is harmless."""
    from dangan.cli import _run_with_db, _tenant

    if all_ == (tenant is not None):
        raise typer.BadParameter("give either --tenant or --all")

    async def work(settings: Settings, endpoints: Endpoints) -> int:
        tenants = await list_tenants() if all_ else [await _tenant(tenant or "")]
        log = command_log(settings, "rating run")
        rated = 0
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as bar:
            for ref in tenants:
                task = bar.add_task(f"rating {ref.slug}", total=None)

                async def advance(done: int, total: int, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                async def rate(ref: TenantRef = ref, advance: Advance = advance) -> int:
                    return await rate_all_customers(ref, "manual", batch_size, advance)

                rated += await record_rating_run(ref, log, {"trigger": "manual"}, rate)
        return rated

    console.print(f"done: {_run_with_db(work)} customer(s) rated")
