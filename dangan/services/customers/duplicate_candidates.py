"""The administrators' worklist of likely duplicates within the tenant (for merging).

Groups of customers that share an ID number, a USCC or a mobile number (exact, by
``GROUP BY``), then pairs whose names are similar (a trigram self-join that finds each
customer's look-alikes through the GIN index ``customer_name_trgm``, kept where the
similarity reaches ``NAME_SIMILARITY``) — most certain first: ID number, USCC, mobile,
then names by falling similarity. Merged customers are left out. Only customers the
caller sees count, and a field only groups customers where the caller may match it
exactly (or, for names, read it in full), so the list says nothing the caller could not
find out by looking. Pages are offsets in that order (the list is a worklist that
changes as it is worked through, not a stable collection).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.duplicates import IDENTITY_MATCHES, NAME_SIMILARITY
from dangan.services.errors import BadUserInput
from dangan.tenants.scope import raw_connection

EXACT_COLUMNS = ("id_number", "uscc", "phone")  # in order of certainty
_CURSOR_PREFIX = "dup:"


@dataclass(frozen=True)
class DuplicateGroup:
    matched_on: str  # column: id_number, uscc, phone or name
    similarity: float | None  # of the names, for name pairs
    customer_ids: list[uuid.UUID]  # oldest first (pairs: by id)

    @property
    def certain(self) -> bool:
        return self.matched_on in IDENTITY_MATCHES


@dataclass(frozen=True)
class DuplicatePage:
    groups: list[DuplicateGroup]
    customers: dict[uuid.UUID, Any]  # id → row as the caller sees it
    has_next: bool
    has_previous: bool
    offset: int

    def cursor(self, index: int) -> str:
        """The cursor after the ``index``-th group of this page."""
        raw = f"{_CURSOR_PREFIX}{self.offset + index + 1}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(after: str | None) -> int:
    if after is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
        if raw.startswith(_CURSOR_PREFIX) and raw[len(_CURSOR_PREFIX) :].isdigit():
            return int(raw[len(_CURSOR_PREFIX) :])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadUserInput("after is not a cursor of this list", field="after")


async def list_duplicate_candidates(
    caller: Caller, *, first: int, after: str | None = None, columns: Sequence[str] = ()
) -> DuplicatePage:
    """A page of likely duplicates, each customer as the caller sees it (``columns``)."""
    check_allowed(caller, "customer.merge")
    if not 1 <= first <= 200:
        raise BadUserInput("first must be between 1 and 200", field="first")
    offset = _decode(after)
    access = await customer_access(caller)
    sql = Numbered()
    live = "c.status <> 'MERGED'"
    parts = []
    for rank, column in enumerate(EXACT_COLUMNS):
        field = access.field(column)
        if field is None:
            continue
        where = sql.add(all_of([access.rows, field.exact_match]))
        parts.append(
            f"SELECT {rank} AS rank, '{column}' AS matched_on, NULL::real AS similarity,"
            f" array_agg(c.id ORDER BY c.created_at, c.id) AS ids FROM customer c"
            f" WHERE {live} AND c.{column} IS NOT NULL AND {where}"
            f" GROUP BY c.{column} HAVING count(*) > 1"
        )
    name = access.field("name")
    if name is not None:
        # ``a`` walks the customers; each one's look-alikes ``c`` come from the GIN index.
        named = f"{live} AND {sql.add(all_of([access.rows, name.full]))}"
        similarity = "dangan_ext.similarity(dedup_name(a.name), dedup_name(c.name))"
        parts.append(
            f"SELECT {len(EXACT_COLUMNS)}, 'name', {similarity}, ARRAY[a.id, c.id]"
            f" FROM customer a JOIN customer c"
            f" ON dedup_name(c.name) OPERATOR(dangan_ext.%) dedup_name(a.name) AND c.id > a.id"
            f" WHERE a.id IN (SELECT c.id FROM customer c WHERE {named})"
            f" AND {named} AND {similarity} >= {NAME_SIMILARITY}"
        )
    if not parts:
        return DuplicatePage([], {}, False, offset > 0, offset)
    rows = await raw_connection().fetch(
        f"SELECT matched_on, similarity, ids FROM ({' UNION ALL '.join(parts)}) g"
        f" ORDER BY rank, similarity DESC NULLS FIRST, ids"
        f" OFFSET {sql.value(offset)} LIMIT {sql.value(first + 1)}",
        *sql.params,
    )
    groups = [
        DuplicateGroup(
            matched_on=row["matched_on"],
            similarity=None if row["similarity"] is None else round(float(row["similarity"]), 3),
            customer_ids=list(row["ids"]),
        )
        for row in rows[:first]
    ]
    ids = list(dict.fromkeys(uid for group in groups for uid in group.customer_ids))
    return DuplicatePage(
        groups=groups,
        customers=await _as_seen_by(caller, ids, columns),
        has_next=len(rows) > first,
        has_previous=offset > 0,
        offset=offset,
    )


async def _as_seen_by(
    caller: Caller, ids: Sequence[uuid.UUID], columns: Sequence[str]
) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    access = await customer_access(caller)
    sql = Numbered()
    projection = access.projection(columns)
    inner = projection.inner_items(sql)
    rows = await raw_connection().fetch(
        f"SELECT {projection.outer_items()} FROM (SELECT {inner} FROM customer c"
        f" WHERE c.id = ANY({sql.value(list(ids))}::uuid[]) AND {sql.add(access.rows)}) c",
        *sql.params,
    )
    return {row["id"]: row for row in rows}
