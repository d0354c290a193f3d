"""``dangan customers import | export``: the API's archive jobs, run here and now.

Each command acts as a member of the tenant (their policy: masking, checks, rights),
records the same ``archive_job`` the API would (so ``archiveJobs`` / ``archiveJob(id)``
show it) and runs it in this process with the worker's own job function: progress on a
bar here and, for the API's ``stage``, in Redis. The job's audit event (``import.run`` /
``export.run``, the member as actor) says it came from this command (origin ``cli``,
the OS user and the command in its details): one event, not one per layer.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dangan.audit.actions import ActionLog
from dangan.authz.store import load_policies
from dangan.cli_records import command_log
from dangan.devstack import Endpoints
from dangan.services.archive_runs import claim
from dangan.services.authentication import member_identity_id, user_caller
from dangan.services.callers import Caller
from dangan.services.errors import Conflict
from dangan.services.exports import start_customer_export
from dangan.services.imports import IMPORT_MODES, start_customer_import
from dangan.settings import Settings
from dangan.storage import ObjectStore, ensure_bucket, s3_client
from dangan.tenants.scope import TenantRef, run_in_tenant
from dangan.workers.archive import Work, export_work, import_work, redis_progress, run_claimed

customers_app = typer.Typer(help="Customers: import from and export to CSV or XLSX files.")
console = Console()
err = Console(stderr=True)
ERRORS_SHOWN = 20
FORMATS = {"csv": "CSV", "xlsx": "XLSX"}
Tenant = Annotated[str, typer.Option(help="Tenant slug")]
Email = Annotated[str, typer.Option(help="The member to act as (their rights and masking)")]
JobProgress = Callable[[int, int, str], Awaitable[None]]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


@dataclass(frozen=True)
class _Member:
    """A connected command: the tenant, the member it acts as, S3, and where Redis is."""

    settings: Settings
    ref: TenantRef
    caller: Caller
    objects: ObjectStore
    redis_url: str
    log: ActionLog  # the job records import.run / export.run with it (origin cli)

    async def run(self, job: dict[str, Any], make: Callable[[JobProgress], Work]) -> Any:
        """Claim the recorded job and run it here, as the worker would, with a bar."""
        redis = Redis.from_url(self.redis_url)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        try:
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("starting", total=None)
                to_api = redis_progress(redis, self.settings.redis_namespace, str(job["id"]))

                async def progress(done: int, total: int, stage: str) -> None:
                    bar.update(task, description=stage, completed=done, total=total)
                    await to_api(done, total, stage)

                claimed = await run_in_tenant(self.ref, lambda: claim(job["id"], job["kind"]))
                if claimed is None or claimed["status"] != "RUNNING":
                    raise Conflict(f"job {job['id']} was taken or ended meanwhile")
                return await run_claimed(self.ref, claimed, make(progress), self.log)
        finally:
            await redis.aclose()


async def _member(
    settings: Settings, endpoints: Endpoints, tenant: str, email: str, command: str
) -> _Member:
    from dangan.cli import _tenant

    load_policies(settings)
    ref = await _tenant(tenant)
    caller = await user_caller(ref, await member_identity_id(ref, email))
    client = s3_client(endpoints)
    await asyncio.to_thread(ensure_bucket, client, settings.s3_bucket)
    objects = ObjectStore(client, settings.s3_bucket)
    return _Member(
        settings, ref, caller, objects, endpoints.redis_url, command_log(settings, command)
    )


def _writable(path: Path) -> None:
    if not path.parent.is_dir():
        raise _fail(f"cannot write {path}: no folder {path.parent}")
    if path.is_dir():
        raise _fail(f"cannot write {path}: it is a folder")


def _import_summary(job_id: Any, result: dict[str, Any]) -> None:
    keys = ("rows", "valid", "imported", "errors", "duplicates")
    console.print(f"import {job_id}: " + ", ".join(f"{key} {result[key]}" for key in keys))
    for refused in result["refusedBatches"]:
        first, last = refused["lines"]
        console.print(f"lines {first}-{last} not imported: {refused['message']}")
    if result["errorList"]:
        table = Table("line", "field", "message")
        for error in result["errorList"][:ERRORS_SHOWN]:
            table.add_row(str(error["line"]), error["field"] or "", error["message"])
        console.print(table)
    if result["errors"] > ERRORS_SHOWN:
        console.print(f"… {result['errors'] - ERRORS_SHOWN} more error(s): see --report")


@customers_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A .csv or .xlsx file")],
    tenant: Tenant,
    email: Email,
    mode: Annotated[str, typer.Option(help=" | ".join(IMPORT_MODES))] = "VALIDATE_ONLY",
    allow_possible_duplicates: Annotated[
        bool,
        typer.Option(
            "--allow-possible-duplicates", help="Import rows that only look like a customer"
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write every error (line, field, message) to this CSV")
    ] = None,
) -> None:
    """Check a customer file as the member and import what --mode allows.

    Exit codes: 0 the job ran (errors, if any, are listed; VALIDATE_ONLY writes nothing,
    IMPORT_VALID_ROWS writes the valid rows); 1 nothing could be imported (the header is
    unusable, IMPORT_IF_ALL_VALID found errors, or the job failed); 2 bad arguments
    (tenant, e-mail, file, mode, report path).
    """
    from dangan.cli import _run_with_db

    mode = mode.upper()
    if mode not in IMPORT_MODES:
        raise _fail(f"--mode must be one of {', '.join(IMPORT_MODES)}")
    format = FORMATS.get(file.suffix.lower().lstrip("."))
    if format is None:
        raise _fail(f"{file}: the file must end in .csv or .xlsx")
    try:
        content = base64.b64encode(file.read_bytes()).decode()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    if report is not None:
        _writable(report)

    async def work(settings: Settings, endpoints: Endpoints) -> tuple[Any, dict[str, Any]]:
        member = await _member(settings, endpoints, tenant, email, "customers import")

        async def start() -> dict[str, Any]:
            return await start_customer_import(
                member.caller,
                format=format,
                filename=file.name,
                content_base64=content,
                mode=mode,
                allow_possible_duplicates=allow_possible_duplicates,
                objects=member.objects,
                queue=None,
                settings=settings,
            )

        job = await run_in_tenant(member.ref, start)
        batch_size = settings.import_batch_size
        result = await member.run(
            job, lambda p: import_work(member.objects, batch_size, p, member.log)
        )
        if report is not None and result.get("errorReportKey"):
            report.write_bytes(await member.objects.get_bytes(result["errorReportKey"]))
        return job["id"], result

    job_id, result = _run_with_db(work)
    if "error" in result:
        raise _fail(f"import {job_id} failed: {result['error']}", 1)
    _import_summary(job_id, result)
    if report is not None:
        console.print(f"error report written to {report}")
    if result["headerErrors"] or (mode == "IMPORT_IF_ALL_VALID" and result["errors"]):
        raise _fail("nothing imported: the file has errors", 1)


@customers_app.command("export")
def export(
    out_file: Annotated[Path, typer.Argument(metavar="OUT_FILE", help="Where to write the file")],
    tenant: Tenant,
    email: Email,
    format: Annotated[str, typer.Option(help="csv or xlsx")] = "csv",
    fields: Annotated[
        str | None, typer.Option(help="API field names, comma-separated (default: all you see)")
    ] = None,
    search: Annotated[str | None, typer.Option(help="As the customers query's search")] = None,
) -> None:
    """Export the customers the member sees, masked as they see them, under a watermark.

    Exit codes: 0 the file was written; 1 the job failed; 2 bad arguments (tenant,
    e-mail, format, fields, output path); 3 more rows than the tenant's approval
    threshold: the export waits for an admin or manager (approveExport) and no file is
    written here.
    """
    from dangan.cli import _run_with_db

    kind = FORMATS.get(format.lower())
    if kind is None:
        raise _fail("--format must be csv or xlsx")
    names = [name.strip() for name in fields.split(",")] if fields is not None else None
    _writable(out_file)

    async def work(settings: Settings, endpoints: Endpoints) -> tuple[dict[str, Any], Any]:
        member = await _member(settings, endpoints, tenant, email, "customers export")

        async def start() -> dict[str, Any]:
            return await start_customer_export(
                member.caller,
                format=kind,
                fields=names,
                conditions=[],
                search=search,
                queue=None,
                settings=settings,
            )

        job = await run_in_tenant(member.ref, start)
        if job["status"] != "QUEUED":
            return job, None
        result = await member.run(job, lambda p: export_work(member.objects, p, member.log))
        if "error" not in result:
            out_file.write_bytes(await member.objects.get_bytes(job["object_key"]))
        return job, result

    job, result = _run_with_db(work)
    if result is None:
        err.print(
            f"[yellow]waiting:[/yellow] export {job['id']} holds {job['total']} rows, more than"
            f" the approval threshold ({job['parameters']['threshold']}): it waits for an admin"
            " or manager to approve it (approveExport); no file written",
            soft_wrap=True,
        )
        raise typer.Exit(3)
    if "error" in result:
        raise _fail(f"export {job['id']} failed: {result['error']}", 1)
    console.print(f"export {job['id']}: {result['rows']} row(s) written to {out_file}")
