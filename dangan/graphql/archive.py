"""Imports and exports of customers (arq jobs): start them, follow them, decide them."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from dangan.graphql.customers.inputs import CustomerCondition
from dangan.graphql.customers.queries import conditions_from
from dangan.services import archive_jobs
from dangan.services.exports import start_customer_export
from dangan.services.imports import start_customer_import
from dangan.workers import progress


@strawberry.enum
class ArchiveFormat(Enum):
    CSV = "CSV"
    XLSX = "XLSX"


@strawberry.enum(description="What an import does with the rows that pass every check")
class ImportMode(Enum):
    VALIDATE_ONLY = "VALIDATE_ONLY"
    IMPORT_IF_ALL_VALID = "IMPORT_IF_ALL_VALID"
    IMPORT_VALID_ROWS = "IMPORT_VALID_ROWS"


@strawberry.enum
class ArchiveJobKind(Enum):
    IMPORT = "IMPORT"
    EXPORT = "EXPORT"


@strawberry.enum
class ArchiveJobStatus(Enum):
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    REJECTED = "REJECTED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.input(
    description="A CSV or XLSX file; header = API field names or their Chinese titles"
)
class StartCustomerImportInput:
    format: ArchiveFormat
    filename: str
    content_base64: str
    mode: ImportMode = ImportMode.VALIDATE_ONLY
    allow_possible_duplicates: bool = False


@strawberry.input(description="Same fields, where and search as the customers query")
class StartCustomerExportInput:
    format: ArchiveFormat
    fields: list[str] | None = None
    where: list[CustomerCondition] | None = None
    search: str | None = None


@strawberry.type(description="An import or export: status, progress, outcome")
class ArchiveJob:
    id: strawberry.ID
    kind: ArchiveJobKind
    status: ArchiveJobStatus
    requested_by: int
    parameters: JSON
    total: int | None
    done: int
    result: JSON | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    decided_by: int | None
    decided_at: datetime | None
    _row: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="What the worker is doing now (checking, writing, reading)")
    async def stage(self, info: Info) -> str | None:
        namespace = info.context.settings.redis_namespace
        key = archive_jobs.queue_job_id(namespace, self.id)
        found = await progress.read(info.context.jobs, namespace, key)
        return found["stage"] if found else None

    @strawberry.field(
        description="A short-lived link to the exported file (export) or the error report "
        "(import); only for the requester, once the job succeeded"
    )
    async def download_url(self, info: Info) -> str | None:
        caller = info.context.require_caller()
        row = self._row
        if row["status"] != "SUCCEEDED" or not archive_jobs.is_requester(caller, row):
            return None
        if row["kind"] == "EXPORT":
            key, name = row["object_key"], row["object_key"].rsplit("/", 1)[-1]
        else:
            key, name = (row["result"] or {}).get("errorReportKey"), "import-errors.csv"
        if not key:
            return None
        seconds = info.context.settings.archive_download_seconds
        url: str = await info.context.objects.download_url(
            key, timedelta(seconds=seconds), filename=name
        )
        return url

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ArchiveJob:
        return cls(
            id=strawberry.ID(str(row["id"])),
            kind=ArchiveJobKind(row["kind"]),
            status=ArchiveJobStatus(row["status"]),
            requested_by=row["actor_id"],
            parameters=row["parameters"],
            total=row["total"],
            done=row["done"],
            result=row["result"],
            error=row["error"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            _row=row,
        )


async def start_import(info: Info, input: StartCustomerImportInput) -> ArchiveJob:
    """Send a customer file; a job checks every row and, as ``mode`` says, imports them."""
    context = info.context
    job = await start_customer_import(
        context.require_caller(),
        format=input.format.value,
        filename=input.filename,
        content_base64=input.content_base64,
        mode=input.mode.value,
        allow_possible_duplicates=input.allow_possible_duplicates,
        objects=context.objects,
        queue=context.jobs,
        settings=context.settings,
    )
    return ArchiveJob.from_row(job)


async def start_export(info: Info, input: StartCustomerExportInput) -> ArchiveJob:
    """Export the customers you see, as you see them; large exports need an approval."""
    context = info.context
    job = await start_customer_export(
        context.require_caller(),
        format=input.format.value,
        fields=input.fields,
        conditions=conditions_from(input.where),
        search=input.search,
        queue=context.jobs,
        settings=context.settings,
    )
    return ArchiveJob.from_row(job)


async def archive_job(info: Info, id: strawberry.ID) -> ArchiveJob:
    """One import or export job: yours (admins: any; managers: exports of their
    departments to decide, and those they decided)."""
    return ArchiveJob.from_row(
        await archive_jobs.get_job_for_caller(info.context.require_caller(), id)
    )


async def archive_jobs_list(
    info: Info, kind: ArchiveJobKind | None = None, first: int = 20
) -> list[ArchiveJob]:
    """Your newest jobs (admins: everyone's), newest first; ``first`` is 1 to 100."""
    rows = await archive_jobs.list_jobs_for_caller(
        info.context.require_caller(), kind.value if kind else None, first
    )
    return [ArchiveJob.from_row(row) for row in rows]


async def approve_export(info: Info, id: strawberry.ID) -> ArchiveJob:
    """Let a large export run (admins and managers; never the requester)."""
    context = info.context
    job = await archive_jobs.approve_export(
        context.require_caller(), id, context.jobs, context.settings.redis_namespace
    )
    return ArchiveJob.from_row(job)


async def reject_export(info: Info, id: strawberry.ID, comment: str) -> ArchiveJob:
    """Refuse a large export, saying why."""
    job = await archive_jobs.reject_export(info.context.require_caller(), id, comment)
    return ArchiveJob.from_row(job)
