"""Writing a batch of checked rows: one ``COPY`` for the customers, two statements for
their change records, and the same policy checks as ``createCustomer`` on the inserted rows.

Everything happens in a savepoint of the batch's transaction. Before it, the batch's
ID numbers and USCCs are locked as ``createCustomer`` locks them and looked up again
(:func:`refuse_new_duplicates`): a customer entered since the file was checked makes
its row a refused duplicate. After the insert, one query evaluates, per new row, whether
the importer may see it, edit it, and see every field they set (``rights_items``,
shared with ``create_customer``); if any row fails, the whole batch is rolled back and
reported, as ``createCustomer`` would refuse it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from dangan.authz.predicates import Numbered
from dangan.services.callers import Caller
from dangan.services.changes import as_text
from dangan.services.customers.duplicates import IDENTITY_MATCHES, find_duplicates_many
from dangan.services.customers.inputs import api_name
from dangan.services.customers.writes import WRITABLE, rights_items
from dangan.services.errors import Forbidden
from dangan.services.imports.row_errors import RowError, duplicate_errors
from dangan.services.imports.validation import ValidRow
from dangan.services.rating.scoring import rate_customers
from dangan.tenants.scope import raw_connection

_DEFAULTS = {"tags": [], "consents_to_sharing": False}
_INSERTED = (*WRITABLE, "id", "created_by", "updated_by")


def _given(values: dict[str, Any]) -> list[str]:
    """Columns the row sets (the caller must be able to see each), as createCustomer."""
    return [c for c, v in values.items() if v not in (None, [], False) and c != "kind"]


async def _refusal(caller: Caller, rows: Sequence[ValidRow], ids: list[uuid.UUID]) -> str | None:
    columns = sorted({column for row in rows for column in _given(row.values)} | {"name"})
    sql = Numbered()
    items = await rights_items(caller, columns, sql)
    found = await raw_connection().fetch(
        f"SELECT c.id, {items} FROM customer c WHERE c.id = ANY({sql.value(ids)}::uuid[])",
        *sql.params,
    )
    rights = {row["id"]: row for row in found}
    for row, new_id in zip(rows, ids, strict=True):
        right = rights[new_id]
        if not (right["visible"] and right["editable"]):
            return f"line {row.line}: your access does not allow creating this customer"
        for column in [*_given(row.values), "name"]:
            if not right[f"can_{column}"]:
                return f"line {row.line}: you may not set {api_name(column)} on this customer"
    return None


async def _record_changes(
    caller: Caller, rows: Sequence[ValidRow], ids: list[uuid.UUID], reason: str
) -> None:
    """The same rows ``record_change`` writes for each created customer, in two statements."""
    conn = raw_connection()
    changes = await conn.fetch(
        "INSERT INTO customer_change (customer_id, action, record_type, status, reason,"
        " actor_kind, actor_id)"
        " SELECT customer_id, 'create', 'customer', 'APPLIED', $2, $3, $4"
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS new(customer_id, n) ORDER BY n"
        " RETURNING id, customer_id",
        ids,
        reason,
        caller.kind,
        caller.id,
    )
    change_of = {row["customer_id"]: row["id"] for row in changes}
    fields: tuple[list[int], list[str], list[str | None]] = ([], [], [])
    for row, new_id in zip(rows, ids, strict=True):
        for column, value in row.values.items():
            if value is None:
                continue
            fields[0].append(change_of[new_id])
            fields[1].append(column)
            fields[2].append(as_text(value))
    await conn.execute(
        "INSERT INTO customer_change_field (change_id, field, old_value, new_value)"
        " SELECT change_id, field, NULL, new_value"
        " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS f(change_id, field, new_value)",
        *fields,
    )


async def refuse_new_duplicates(
    caller: Caller, rows: Sequence[ValidRow]
) -> tuple[list[ValidRow], list[RowError]]:
    """The rows still without a customer of the same ID number or USCC, and the errors
    of the others. Takes the advisory lock ``check_not_duplicate`` takes on each
    identifier (in one order, so two imports never wait for each other in a circle),
    held until the batch's transaction ends."""
    identifiers = sorted(IDENTITY_MATCHES)
    keys = sorted(
        {
            f"customer.{column}:{row.values[column]}"
            for row in rows
            for column in identifiers
            if row.values.get(column)
        }
    )
    if not keys:
        return list(rows), []
    await raw_connection().execute(
        "SELECT pg_advisory_xact_lock(hashtext(k))"
        ' FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k COLLATE "C") ordered',
        keys,
    )
    found = await find_duplicates_many(
        caller, [{column: row.values.get(column) for column in identifiers} for row in rows]
    )
    refused = [(row.line, candidates) for row, candidates in zip(rows, found, strict=True)]
    errors = await duplicate_errors(caller, [pair for pair in refused if pair[1]])
    return [row for row, candidates in zip(rows, found, strict=True) if not candidates], errors


async def write_batch(caller: Caller, rows: Sequence[ValidRow], reason: str) -> str | None:
    """Insert ``rows`` (already checked) as the caller; returns None, or why the batch
    was refused (then nothing of it is written)."""
    if not rows:
        return None
    ids = [uuid.uuid4() for _ in rows]
    actor = caller.id if caller.kind == "user" else None
    records = [
        (
            *(
                _DEFAULTS.get(column) if row.values.get(column) is None else row.values[column]
                for column in WRITABLE
            ),
            new_id,
            actor,
            actor,
        )
        for row, new_id in zip(rows, ids, strict=True)
    ]
    try:
        async with raw_connection().savepoint():
            await raw_connection().copy_records("customer", _INSERTED, records)
            refusal = await _refusal(caller, rows, ids)
            if refusal is not None:
                raise Forbidden(refusal)
            await _record_changes(caller, rows, ids, reason)
            await rate_customers(ids, "change")
    except Forbidden as exc:
        return exc.message
    return None
