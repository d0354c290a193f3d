"""``dangan policy check | test | diff``: what an administrator runs before proposing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from dangan.audit.actions import ActionLog
from dangan.authz.adapter import PolicyError
from dangan.authz.engine import PolicyEngine
from dangan.authz.policy_tests import load_cases, run_cases
from dangan.authz.store import POLICIES, load_policies, polar_sources, read_policy_dir, test_sources
from dangan.cli_records import command_log
from dangan.services.authentication import member_identity_id, user_caller
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.services.policies import check_files
from dangan.services.policy_impact import impact_report
from dangan.tenants.scope import TenantRef, run_in_tenant

policy_app = typer.Typer(help="Access policies: check, test, and measure a change.")
console = Console()
err = Console(stderr=True)
Directory = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A policies folder")]


def _load(directory: Path) -> tuple[dict[str, str], PolicyEngine]:
    files = read_policy_dir(directory)
    try:
        engine = PolicyEngine(polar_sources(files), version=str(directory))
    except PolicyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if engine.warnings:
        for warning in engine.warnings:
            err.print(f"[red]error:[/red] {warning}")
        raise typer.Exit(1)
    return files, engine


@policy_app.command("check")
def check(directory: Directory) -> None:
    """Load every .polar file: syntax, classes, fields and required rules."""
    files, _ = _load(directory)
    console.print(f"ok: {len(polar_sources(files))} policy file(s) load cleanly")


@policy_app.command("test")
def test(directory: Directory) -> None:
    """Run the folder's tests/*.yaml cases against its policy."""
    files, engine = _load(directory)
    try:
        cases = load_cases(test_sources(files))
        failures = run_cases(engine, cases)
    except PolicyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for failure in failures:
        err.print(f"[red]FAIL[/red] {failure}")
    checks = sum(len(case.get("expect") or {}) for case in cases)
    console.print(f"{len(cases)} case(s), {checks - len(failures)} of {checks} check(s) passed")
    if failures:
        raise typer.Exit(1)


def _report_table(report: dict[str, Any]) -> Table:
    table = Table("role", "callers", "what", "before", "after")
    for role, data in report["roles"].items():
        before, after = data["customers"]
        table.add_row(role, str(data["actors"]), "customers seen", str(before), str(after))
        for cls, outcomes in data["classes"].items():
            for outcome, (b, a) in outcomes.items():
                if b != a:
                    table.add_row("", "", f"{cls} values {outcome}", str(b), str(a))
        before, after = data["auditReaders"]
        if before != after:
            table.add_row("", "", "may read the audit trail", str(before), str(after))
    return table


@policy_app.command("diff")
def diff(
    directory: Directory,
    tenant: Annotated[str, typer.Option(help="Measure against this tenant's data")],
) -> None:
    """Who would see what differently if this folder became the tenant's policy."""
    from dangan.cli import _run_with_db, _tenant

    files = read_policy_dir(directory)

    async def work(settings: Any, endpoints: Any) -> dict[str, Any]:
        load_policies(settings)
        ref = await _tenant(tenant)
        proposed = check_files(files)

        async def measure() -> dict[str, Any]:
            return await impact_report(await POLICIES.engine_for(ref.id), proposed)

        return await run_in_tenant(ref, measure)

    try:
        report = _run_with_db(work)
    except BadUserInput as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(_report_table(report))
    console.print("changes who sees what" if report["changed"] else "no change in who sees what")


async def _caller(tenant: Any, email: str) -> Any:
    """The person proposing or activating (the service checks they are an admin)."""
    return await user_caller(tenant, await member_identity_id(tenant, email))


async def _as_admin(
    tenant: TenantRef,
    email: str,
    log: ActionLog,
    action: str,
    details: dict[str, Any],
    work: Callable[[Caller], Awaitable[Any]],
) -> Any:
    """Run ``work`` as the administrator ``email`` in a tenant transaction that also
    records ``action`` (with the version it stored or activated), or record its failure
    apart: the actor is that administrator, the command and OS user in the details."""
    caller: Caller | None = None
    try:
        caller = await _caller(tenant, email)
        admin = caller

        async def act_and_record() -> Any:
            row = await work(admin)
            await log.record(action, actor=admin, details={**details, "version": row["id"]})
            return row

        return await run_in_tenant(tenant, act_and_record)
    except Exception as exc:
        await log.record_failure(tenant, action, exc, actor=caller, details=details)
        raise


@policy_app.command("propose")
def propose(
    directory: Directory,
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option(help="An administrator of the tenant")],
    comment: Annotated[str, typer.Option(help="Why the change")],
) -> None:
    """Store this folder as a new (not yet active) version, with its impact report."""
    from dangan.cli import _run_with_db, _tenant
    from dangan.services.policies import propose_policy

    files = read_policy_dir(directory)

    async def work(settings: Any, endpoints: Any) -> Any:
        load_policies(settings)
        ref = await _tenant(tenant)
        details = {"files": sorted(files), "policyComment": comment}

        async def act(caller: Caller) -> Any:
            return await propose_policy(caller, files, comment)

        return await _as_admin(
            ref, email, command_log(settings, "policy propose"), "policy.propose", details, act
        )

    row = _run_with_db(work)
    console.print(_report_table(orjson.loads(row["report"])))
    console.print(
        f"proposed version {row['id']}; activate it with "
        f"`dangan policy activate --tenant {tenant} --email {email} {row['id']}`"
    )


@policy_app.command("activate")
def activate(
    version: int,
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option(help="An administrator of the tenant")],
) -> None:
    """Make a stored version active for every API process (rollback: an older one)."""
    from dangan.cli import _run_with_db, _tenant
    from dangan.services.policies import activate_policy

    async def work(settings: Any, endpoints: Any) -> Any:
        load_policies(settings)
        ref = await _tenant(tenant)
        details = {"version": version}

        async def act(caller: Caller) -> Any:
            return await activate_policy(caller, version)

        return await _as_admin(
            ref, email, command_log(settings, "policy activate"), "policy.activate", details, act
        )

    row = _run_with_db(work)
    console.print(f"version {row['id']} is active for {tenant}")
