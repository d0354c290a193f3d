"""Helpers for import/export tests: files to send, the arq worker run in-process."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.workers.settings import build_worker
from tests.support.api import Api

JOB_FIELDS = "id kind status total done result error downloadUrl requestedBy"
START_IMPORT = f"""mutation($input: StartCustomerImportInput!) {{
  startCustomerImport(input: $input) {{ {JOB_FIELDS} }} }}"""
START_EXPORT = f"""mutation($input: StartCustomerExportInput!) {{
  startCustomerExport(input: $input) {{ {JOB_FIELDS} }} }}"""
JOB = f"query($id: ID!) {{ archiveJob(id: $id) {{ {JOB_FIELDS} }} }}"


def csv_file(rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return base64.b64encode(out.getvalue().encode("utf-8-sig")).decode()


def xlsx_file(rows: Sequence[Sequence[Any]]) -> str:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return base64.b64encode(out.getvalue()).decode()


async def run_jobs(settings: Settings, endpoints: Endpoints) -> None:
    """Run the real arq worker until the queue is empty."""
    worker = build_worker(settings, endpoints, connect_database=False, burst=True, poll_delay=0.05)
    try:
        await asyncio.wait_for(worker.main(), timeout=120)
    finally:
        await worker.close()


async def job(api: Api, tenant: str, token: str, job_id: str) -> dict[str, Any]:
    return (await api.post(tenant, token, JOB, {"id": job_id})).ok()["archiveJob"]


async def forget_jobs(settings: Settings, endpoints: Endpoints) -> None:
    """arq keeps job keys a day under global names: leave nothing on a shared Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(endpoints.redis_url)
    try:
        stale = [key async for key in client.scan_iter(match=f"arq:*{settings.redis_namespace}*")]
        if stale:
            await client.delete(*stale)
    finally:
        await client.aclose()
