"""The import job: read the file, check every row, write what the mode allows.

Modes: ``VALIDATE_ONLY`` writes nothing; ``IMPORT_IF_ALL_VALID`` writes only a file
without a single error, all of it in one transaction (a batch refused by the policy
undoes the whole import); ``IMPORT_VALID_ROWS`` writes the valid rows, one transaction
per batch, each recording ``done`` (rows through that batch) with it — a re-run after a
crash resumes after the last committed batch, so no row is created twice. The outcome
of the checks is kept with the job before writing starts, so a re-run doesn't take the
rows it already wrote for duplicates. Each batch locks the job's row and is skipped if
another run of the job wrote it meanwhile. A row that no longer passes its checks when
its batch is written (its owner left, a customer with its ID number was entered) is
refused (``refusedRows``) and the others written. The transaction that finishes the job
records ``import.run`` (the requester as actor; rows, written, refused) in the audit
trail.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

from dangan.audit.actions import ActionLog
from dangan.services.archive_runs import finish, lock_progress, save_checked, save_progress
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Forbidden
from dangan.services.imports.parsing import Sheet, read_sheet
from dangan.services.imports.row_errors import RowError
from dangan.services.imports.validation import (
    Checked,
    Validator,
    ValidRow,
    check_sheet,
    load_known,
    map_header,
)
from dangan.services.imports.writing import refuse_new_duplicates, write_batch
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, run_in_tenant

Progress = Callable[[int, int, str], Awaitable[None]]
ERRORS_KEPT = 1000


def _error_report(checked: Checked) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "field", "message", "candidates"])
    for error in checked.errors:
        writer.writerow([error.line, error.field or "", error.message, ";".join(error.candidates)])
    return out.getvalue().encode("utf-8-sig")


def _summary(checked: Checked, report_key: str) -> dict[str, Any]:
    return {
        "rows": checked.rows,
        "valid": len(checked.valid),
        "invalid": len(checked.invalid_lines),
        "duplicates": len(checked.duplicate_lines),
        "errors": len(checked.errors),
        "headerErrors": checked.header_errors,
        "errorList": [error.as_dict() for error in checked.errors[:ERRORS_KEPT]],
        "errorReportKey": report_key,
        "imported": 0,
        "refusedBatches": [],
        "refusedRows": [],
    }


def _batches(sheet: Sheet, size: int) -> list[tuple[int, list[int]]]:
    """(rows through this batch, lines in it), in file order."""
    lines = [line for line, _ in sheet.rows]
    return [
        (min(start + size, len(lines)), lines[start : start + size])
        for start in range(0, len(lines), size)
    ]


async def _check(
    caller: Caller,
    tenant: TenantRef,
    job: dict[str, Any],
    sheet: Sheet,
    objects: ObjectStore,
    every: int,
    progress: Progress,
) -> dict[str, Any]:
    total = len(sheet.rows)

    async def checked_rows() -> Checked:
        return await check_sheet(
            caller,
            sheet,
            allow_possible=bool(job["parameters"].get("allowPossibleDuplicates")),
            every=every,
            progress=lambda n: progress(n, total, "checking"),
        )

    checked = await run_in_tenant(tenant, checked_rows)
    report_key = job["object_key"].rsplit("/", 1)[0] + "/errors.csv"
    await objects.put_bytes(report_key, _error_report(checked), "text/csv; charset=utf-8")
    return {**_summary(checked, report_key), "validLines": [row.line for row in checked.valid]}


async def _write(
    caller: Caller,
    job: dict[str, Any],
    sheet: Sheet,
    state: dict[str, Any],
    batch: tuple[int, list[int]],
) -> None:
    """Write one batch and advance the checkpoint, in the current transaction (unless
    another run of the job wrote it: then nothing)."""
    through, lines = batch
    done, stored = await lock_progress(job["id"])
    if done >= through:
        return
    state.update(stored)  # the counts so far, whichever run of the job made them
    columns, _ = map_header(sheet.header)
    validator = Validator(caller, False, await load_known())
    wanted = set(state["validLines"]) & set(lines)
    rows: list[ValidRow] = []
    for line, cells in sheet.rows[through - len(lines) : through]:
        if line in wanted:
            try:
                rows.append(ValidRow(line, validator.values_of(line, columns, cells)))
            except BadUserInput as exc:
                state["refusedRows"].append(RowError(line, exc.field, exc.message).as_dict())
    rows, duplicates = await refuse_new_duplicates(caller, rows)
    state["refusedRows"] += [error.as_dict() for error in duplicates]
    filename = job["parameters"].get("filename", "")
    refusal = await write_batch(caller, rows, f"import {job['id']} ({filename})")
    if refusal is None:
        state["imported"] += len(rows)
    else:
        state["refusedBatches"].append({"lines": [lines[0], lines[-1]], "message": refusal})
    await save_progress(job["id"], through, len(sheet.rows), state)


async def run_import(
    caller: Caller,
    tenant: TenantRef,
    job: dict[str, Any],
    objects: ObjectStore,
    *,
    batch_size: int,
    progress: Progress,
    log: ActionLog,
) -> dict[str, Any]:
    """Run (or resume) an import job as ``caller``; returns its result."""
    data = await objects.get_bytes(job["object_key"])
    sheet = await asyncio.to_thread(read_sheet, job["parameters"]["format"], data)
    total = len(sheet.rows)
    mode = job["parameters"]["mode"]
    state = job["result"] if (job["result"] or {}).get("validLines") is not None else None
    if state is None:
        state = await _check(caller, tenant, job, sheet, objects, batch_size, progress)
        if (
            mode == "VALIDATE_ONLY"
            or state["headerErrors"]
            or (mode == "IMPORT_IF_ALL_VALID" and state["errors"])
        ):
            return await _done(caller, tenant, job, state, total, log)
        await run_in_tenant(tenant, lambda: save_checked(job["id"], total, state))
    pending = [batch for batch in _batches(sheet, batch_size) if batch[0] > job["done"]]
    if mode == "IMPORT_IF_ALL_VALID":

        async def everything() -> None:
            for batch in pending:
                await _write(caller, job, sheet, state, batch)
                if state["refusedBatches"]:
                    refused = state["refusedBatches"][0]
                    raise Forbidden(f"nothing imported: {refused['message']}")
                if state["refusedRows"]:
                    row = state["refusedRows"][0]
                    raise BadUserInput(
                        f"nothing imported: line {row['line']}: {row['message']}",
                        field=row["field"],
                    )
                await progress(batch[0], total, "writing")
            if await finish(job["id"], _final(state), None):
                await _record(log, caller, job, state)

        await run_in_tenant(tenant, everything)
        return _final(state)
    for batch in pending:

        async def one(batch: tuple[int, list[int]] = batch) -> None:
            await _write(caller, job, sheet, state, batch)

        await run_in_tenant(tenant, one)
        await progress(batch[0], total, "writing")
    return await _done(caller, tenant, job, state, total, log)


def _final(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key != "validLines"}


def _refused(state: dict[str, Any]) -> int:
    """Valid rows not written: refused one by one, or with their batch."""
    one_by_one = {row["line"] for row in state["refusedRows"]}
    with_batch = {
        line
        for line in state.get("validLines") or ()
        for first, last in (batch["lines"] for batch in state["refusedBatches"])
        if first <= line <= last and line not in one_by_one
    }
    return len(one_by_one) + len(with_batch)


async def _record(
    log: ActionLog, caller: Caller, job: dict[str, Any], state: dict[str, Any]
) -> None:
    parameters = job["parameters"]
    await log.record(
        "import.run",
        actor=caller,
        details={
            "job": str(job["id"]),
            "filename": parameters.get("filename"),
            "format": parameters.get("format"),
            "mode": parameters.get("mode"),
            "rows": state["rows"],
            "valid": state["valid"],
            "invalid": state["invalid"],
            "duplicates": state["duplicates"],
            "written": state["imported"],
            "refused": _refused(state),
        },
        request_id=str(job["id"]),
    )


async def _done(
    caller: Caller,
    tenant: TenantRef,
    job: dict[str, Any],
    state: dict[str, Any],
    total: int,
    log: ActionLog,
) -> dict[str, Any]:
    result = _final(state)

    async def record() -> None:
        await save_progress(job["id"], total, total)
        if await finish(job["id"], result, None):
            await _record(log, caller, job, state)

    await run_in_tenant(tenant, record)
    return result
