"""An import row's errors, and how a duplicate is described to the importer.

A duplicate names an existing customer, and the field it matched on, only where the
importer may test that field exactly on that customer (``exact_match``: in full, or
masked with the policy's "match" right; for names, similar rather than equal, where the
name is shown). Otherwise the row is refused saying only that a customer the importer
may not see may be the same one — so a guessed identifier confirms nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.duplicates import LOOKUPS, Candidate
from dangan.services.customers.inputs import api_name
from dangan.tenants.scope import raw_connection

HIDDEN_DUPLICATE = (
    "a possible duplicate exists that is not visible to you; ask an administrator to check"
)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    message: str
    candidates: tuple[str, ...] = ()  # ids of existing customers the caller may see

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"line": self.line, "field": self.field, "message": self.message}
        if self.candidates:
            found["candidates"] = list(self.candidates)
        return found


async def _matchable(caller: Caller, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """For each of ``ids`` the caller sees, the looked-up columns they may match on it."""
    if not ids:
        return {}
    access = await customer_access(caller)
    sql = Numbered()
    flags = []
    for column in LOOKUPS:
        field = access.field(column)
        test = None if field is None else field.shown if column == "name" else field.exact_match
        may = f"COALESCE({sql.add(test)}, FALSE)" if test is not None else "FALSE"
        flags.append(f"{may} AS may_{column}")
    rows = await raw_connection().fetch(
        f"SELECT c.id, {', '.join(flags)}"
        f" FROM customer c WHERE c.id = ANY({sql.value(list(ids))}::uuid[])"
        f" AND {sql.add(access.rows)}",
        *sql.params,
    )
    return {row["id"]: {column for column in LOOKUPS if row[f"may_{column}"]} for row in rows}


def _duplicate_error(
    line: int, refusing: Sequence[Candidate], matchable: dict[uuid.UUID, set[str]]
) -> RowError:
    described = [c for c in refusing if set(c.matched_on) & matchable.get(c.id, set())]
    if not described:
        return RowError(line, None, HIDDEN_DUPLICATE)
    first = described[0]
    matched = next(column for column in first.matched_on if column in matchable[first.id])
    name = api_name(matched)
    how = "the same" if matched != "name" else "a similar"
    ids = tuple(str(c.id) for c in described)
    message = f"a customer with {how} {name} exists: {', '.join(ids)}"
    if len(described) < len(refusing):
        message += "; another one you may not see may be the same"
    return RowError(line, name, message, ids)


async def duplicate_errors(
    caller: Caller, refused: Sequence[tuple[int, Sequence[Candidate]]]
) -> list[RowError]:
    """The error of each (line, candidates refusing it), telling the caller only what
    they may know (one query for all of them)."""
    ids = list({c.id for _, candidates in refused for c in candidates if c.visible})
    matchable = await _matchable(caller, ids)
    return [_duplicate_error(line, candidates, matchable) for line, candidates in refused]
