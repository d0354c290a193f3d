"""Checking every row of an import, reporting every problem with its line and field.

Each cell goes through the same checks as ``createCustomer`` (``check_customer_values``,
``check_kind_fits``, ``check_city_fits``, owner and department, active dictionary
values), one field at a time, so a row with three bad fields gets three errors. Then
duplicates: a row with the same ID number or USCC as an existing customer (or as an
earlier row of the file) is always refused; a row whose phone number or name only
suggests one is refused unless the caller allowed possible duplicates. The caller learns
the ids of the candidates they may match exactly, and of the others only that they exist
(:mod:`.row_errors`). Nothing is ever merged. The existing customers are searched for a
batch of rows at a time, in one statement (``find_duplicates_many``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dangan.services.callers import Caller
from dangan.services.classification import DIMENSIONS
from dangan.services.customers.duplicates import Candidate, find_duplicates_many
from dangan.services.customers.inputs import (
    api_name,
    check_city_fits,
    check_customer_values,
    check_kind_fits,
)
from dangan.services.errors import BadUserInput
from dangan.services.imports.columns import API_COLUMNS, cell_value, field_for_title
from dangan.services.imports.parsing import Sheet
from dangan.services.imports.row_errors import RowError, duplicate_errors
from dangan.tenants.scope import raw_connection

REQUIRED_FIELDS = ("kind", "name")
_FILE_KEYS = ("id_number", "uscc", "phone")  # identifiers compared within the file
# Rows looked up among the existing customers in one statement.
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class ValidRow:
    line: int
    values: dict[str, Any]  # normalised columns, defaults filled in


@dataclass
class _Outcome:
    """A row's values and errors while its batch is being checked."""

    line: int
    values: dict[str, Any]
    errors: list[RowError]
    invalid: bool = False  # failed a field check (else at most a duplicate)


@dataclass
class Checked:
    rows: int = 0
    valid: list[ValidRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_lines: set[int] = field(default_factory=set)
    duplicate_lines: set[int] = field(default_factory=set)
    header_errors: int = 0


def map_header(header: Sequence[str]) -> tuple[list[str | None], list[RowError]]:
    """Column of each header cell (None: blank title, ignored) and the header's errors."""
    columns: list[str | None] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for title in header:
        if not title:
            columns.append(None)
            continue
        name = field_for_title(title)
        if name is None:
            errors.append(RowError(1, title, f"unknown column {title!r}"))
            columns.append(None)
        elif name in seen:
            errors.append(RowError(1, name, f"column {name!r} appears twice"))
            columns.append(None)
        else:
            seen.add(name)
            columns.append(API_COLUMNS[name])
    for name in REQUIRED_FIELDS:
        if name not in seen:
            errors.append(RowError(1, name, f"missing column {name!r}"))
    return columns, errors


def _check_cells(
    line: int, columns: Sequence[str | None], cells: Sequence[Any], known: dict[str, Any]
) -> tuple[dict[str, Any], list[RowError]]:
    values: dict[str, Any] = {}
    errors: list[RowError] = []
    for column, cell in zip(columns, cells, strict=False):
        if column is None:
            continue
        try:
            value = cell_value(column, cell)
            if value is not None:
                values.update(check_customer_values({column: value}).values)
        except BadUserInput as exc:
            errors.append(RowError(line, exc.field, exc.message))
    for name in REQUIRED_FIELDS:
        if API_COLUMNS[name] not in values and not any(e.field == name for e in errors):
            errors.append(RowError(line, name, f"{name} cannot be empty"))
    if not errors:
        try:
            check_kind_fits(values["kind"], values)
        except BadUserInput as exc:
            errors.append(RowError(line, exc.field, exc.message))
    try:
        check_city_fits(values)
    except BadUserInput as exc:
        errors.append(RowError(line, exc.field, exc.message))
    errors += _check_known(line, values, known)
    return values, errors


def _check_known(line: int, values: dict[str, Any], known: dict[str, Any]) -> list[RowError]:
    """Owner and department exist, dictionary codes are active (the same rules as
    createCustomer, against lists loaded once for many rows)."""
    errors = []
    owner = values.get("owner_id")
    if owner is not None and owner not in known["members"]:
        errors.append(RowError(line, "ownerId", "ownerId is not a member of this tenant"))
    department = values.get("department_id")
    if department is not None and department not in known["departments"]:
        errors.append(
            RowError(line, "departmentId", "departmentId is not a department of this tenant")
        )
    for column in DIMENSIONS:
        code = values.get(column)
        if code is not None and (column, str(code)) not in known["codes"]:
            message = f"{column} {code} is not an active value (see classificationValues)"
            errors.append(RowError(line, column, message))
    return errors


async def load_known() -> dict[str, Any]:
    """Active members (with their department), departments and active dictionary
    values of the tenant: what every row is checked against."""
    conn = raw_connection()
    members = await conn.fetch("SELECT identity_id, department_id FROM member WHERE active")
    departments = await conn.fetch("SELECT id FROM department")
    codes = await conn.fetch(
        "SELECT dimension, code FROM classification_value WHERE retired_at IS NULL"
    )
    return {
        "members": {row["identity_id"]: row["department_id"] for row in members},
        "departments": {row["id"] for row in departments},
        "codes": {(row["dimension"], row["code"]) for row in codes},
    }


class Validator:
    """Checks rows batch after batch, remembering the file's identifiers so far."""

    def __init__(self, caller: Caller, allow_possible: bool, known: dict[str, Any]) -> None:
        self.caller = caller
        self.allow_possible = allow_possible
        self.known = known
        self.in_file: dict[tuple[str, str], int] = {}

    def _complete(self, values: dict[str, Any]) -> dict[str, Any]:
        values.setdefault("tier", "ORDINARY")
        if values.get("owner_id") is None:
            values["owner_id"] = self.caller.id
        if values.get("department_id") is None:
            values["department_id"] = self.known["members"].get(values["owner_id"])
        return values

    def _in_file(self, line: int, values: dict[str, Any]) -> RowError | None:
        for column in _FILE_KEYS:
            value = values.get(column)
            earlier = self.in_file.get((column, value)) if value else None
            if earlier is not None and (column != "phone" or not self.allow_possible):
                name = api_name(column)
                return RowError(line, name, f"the same {name} as line {earlier} of this file")
        for column in _FILE_KEYS:
            if values.get(column):
                self.in_file.setdefault((column, values[column]), line)
        return None

    def values_of(self, line: int, columns: Sequence[str | None], cells: Any) -> dict[str, Any]:
        """The values of a row that passed the checks before (to write it on a re-run)."""
        values, errors = _check_cells(line, columns, cells, self.known)
        if errors:
            raise BadUserInput(
                f"line {line} no longer passes its checks: {errors[0].message}",
                field=errors[0].field,
            )
        return self._complete(values)

    async def check(
        self, checked: Checked, columns: Sequence[str | None], rows: Sequence[tuple[int, Any]]
    ) -> None:
        """Check ``rows`` (line, cells) in file order, looking all of them up among the
        existing customers in one statement; outcomes join ``checked`` in line order."""
        outcomes: list[_Outcome] = []
        for line, cells in rows:
            values, errors = _check_cells(line, columns, cells, self.known)
            if errors:
                outcomes.append(_Outcome(line, values, errors, invalid=True))
                continue
            values = self._complete(values)
            duplicate = self._in_file(line, values)
            outcomes.append(_Outcome(line, values, [duplicate] if duplicate else []))
        # Earlier rows of the file are not in the table yet: the in-file check covers them.
        pending = [outcome for outcome in outcomes if not outcome.errors]
        found = await find_duplicates_many(self.caller, [outcome.values for outcome in pending])
        refused: list[tuple[_Outcome, list[Candidate]]] = []
        for outcome, candidates in zip(pending, found, strict=True):
            refusing = [c for c in candidates if c.certain or not self.allow_possible]
            if refusing:
                refused.append((outcome, refusing))
        errors = await duplicate_errors(self.caller, [(o.line, r) for o, r in refused])
        for (outcome, _), error in zip(refused, errors, strict=True):
            outcome.errors.append(error)
        for outcome in outcomes:
            checked.rows += 1
            if not outcome.errors:
                checked.valid.append(ValidRow(outcome.line, outcome.values))
                continue
            checked.errors += outcome.errors
            lines = checked.invalid_lines if outcome.invalid else checked.duplicate_lines
            lines.add(outcome.line)


async def check_sheet(
    caller: Caller,
    sheet: Sheet,
    *,
    allow_possible: bool,
    every: int,
    progress: Callable[[int], Awaitable[None]],
) -> Checked:
    """Check the whole file (in the current tenant transaction), reporting progress
    every ``every`` rows and at the last one."""
    columns, header_errors = map_header(sheet.header)
    checked = Checked(errors=list(header_errors), header_errors=len(header_errors))
    validator = Validator(caller, allow_possible, await load_known())
    for start in range(0, len(sheet.rows), LOOKUP_BATCH):
        batch = sheet.rows[start : start + LOOKUP_BATCH]
        await validator.check(checked, columns, batch)
        for done in range(start + 1, start + len(batch) + 1):
            if done % every == 0 or done == len(sheet.rows):
                await progress(done)
    return checked
