"""``dangan audit report --tenant T --from D --to D``: the tenant's compliance report
(合规审查) for a period, as a JSON, CSV or printable HTML file."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dangan.audit.checkpoints import open_checkpoint_store
from dangan.cli_records import command_log
from dangan.devstack import Endpoints
from dangan.services.compliance import ComplianceReport, build_report, check_period, render_report
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants.scope import run_in_tenant

console = Console()


def _moment(value: str, option: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            "give a date (2025-01-01) or a time (2025-01-01T08:00+08:00)", param_hint=option
        ) from exc


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

        async def build() -> ComplianceReport:
            built = await build_report(ref, period, store, "dangan audit report (command)")
            details = {"from": period.start.isoformat(), "to": period.end.isoformat()}
            await command_log(settings, "audit report").record(
                "audit.report", details={**details, "format": kind}
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
