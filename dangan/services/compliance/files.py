"""A compliance report as a downloadable file: rendered, kept in S3 under
``compliance-reports/<tenant>/<id>.<ext>`` (encrypted at rest like every object, and
kept: a report handed to an inspector can be produced again byte for byte), and handed
out as a short-lived presigned link."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dangan.audit.checkpoints import CheckpointStore
from dangan.services.callers import Caller
from dangan.services.compliance.render import FORMATS, render_report
from dangan.services.compliance.report import ComplianceReport, compliance_report
from dangan.services.errors import BadUserInput
from dangan.storage import ObjectStore

PREFIX = "compliance-reports"


@dataclass(frozen=True)
class ReportFile:
    format: str
    filename: str
    url: str
    expires_at: datetime
    size: int  # bytes


def report_filename(report: ComplianceReport, format: str) -> str:
    header = report.header
    return (
        f"compliance-report-{header.tenant}-{header.period_from:%Y%m%d}"
        f"-{header.period_to:%Y%m%d}.{FORMATS[format][1]}"
    )


async def save_report(
    report: ComplianceReport, format: str, objects: ObjectStore, expires: timedelta
) -> ReportFile:
    content_type, extension = FORMATS[format]
    data = await asyncio.to_thread(render_report, report, format)
    key = f"{PREFIX}/{report.header.tenant}/{uuid.uuid4()}.{extension}"
    await objects.put_bytes(key, data, content_type)
    filename = report_filename(report, format)
    url = await objects.download_url(key, expires, filename=filename)
    return ReportFile(format, filename, url, datetime.now(UTC) + expires, len(data))


async def export_compliance_report(
    caller: Caller,
    start: datetime,
    end: datetime,
    format: str,
    *,
    checkpoints: CheckpointStore,
    objects: ObjectStore,
    expires: timedelta,
) -> ReportFile:
    """The caller's report for ``[start, end)`` as a JSON, CSV or HTML file in S3, with a
    link valid for ``expires`` (the same checks as :func:`compliance_report`)."""
    if format not in FORMATS:
        raise BadUserInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    report = await compliance_report(caller, start, end, checkpoints)
    return await save_report(report, format, objects, expires)
