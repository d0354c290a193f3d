"""Finding likely duplicates of a customer (避免重复录入) within the tenant.

A candidate is an existing customer (not merged away) with the same normalised mobile
number, ID number or USCC, or a name whose distinguishing part (``dedup_name``: no
spaces, no legal form) is similar by trigrams (pg_trgm, GIN-indexed). Every customer of
the tenant is considered, seen by the caller or not; whether the caller may see each
candidate is part of the answer, so the caller is told only what they may know.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.tenants.scope import raw_connection

# Names at least this similar (0–1, pg_trgm similarity of their dedup_name) are a match.
# 杭州西湖科技 vs 杭州市西湖科技: 0.5; vs 杭州西湖软件: 0.4; vs 上海浦东科技: 0.08.
NAME_SIMILARITY = 0.5
# Matching these is the same customer, whoever asks: never created twice.
IDENTITY_MATCHES = frozenset({"id_number", "uscc"})
# The columns a duplicate is looked up by; all but the name must match exactly.
LOOKUPS = ("name", "phone", "id_number", "uscc")
_EXACT = LOOKUPS[1:]


@dataclass(frozen=True)
class Candidate:
    id: uuid.UUID
    matched_on: tuple[str, ...]  # columns: phone, id_number, uscc, name
    name_similarity: float
    visible: bool  # may the caller see this customer?

    @property
    def certain(self) -> bool:
        """Same ID number or USCC: the same customer, not just a likely one."""
        return bool(IDENTITY_MATCHES & set(self.matched_on))


async def find_duplicates(
    caller: Caller,
    values: Mapping[str, Any],
    *,
    exclude: uuid.UUID | None = None,
    limit: int = 10,
) -> list[Candidate]:
    """Existing customers that look like ``values`` (normalised columns: name, phone,
    id_number, uscc), most certain first."""
    excluded = () if exclude is None else (exclude,)
    found = await find_duplicates_many(caller, [values], exclude=excluded, limit_per_row=limit)
    return found[0]


async def find_duplicates_many(
    caller: Caller,
    rows: Sequence[Mapping[str, Any]],
    *,
    exclude: Collection[uuid.UUID] = (),
    limit_per_row: int = 10,
) -> list[list[Candidate]]:
    """For each of ``rows`` (normalised columns: name, phone, id_number, uscc), the
    existing customers that look like it, most certain first, in one statement.

    Rows are not compared with each other: only customers already in the table count.
    ``exclude``: customers that are never candidates (e.g. the one being changed)."""
    found: list[list[Candidate]] = [[] for _ in rows]
    asked = [n for n, values in enumerate(rows) if any(values.get(c) for c in LOOKUPS)]
    if not asked:
        return found
    statement, params = await _statement(caller, rows, asked, exclude, limit_per_row)
    for row in await _fetch(statement, params):
        found[asked[row["n"] - 1]].append(_candidate(row))
    return found


async def explain_find_duplicates(caller: Caller, rows: Sequence[Mapping[str, Any]]) -> str:
    """The plan of :func:`find_duplicates_many` for ``rows`` (benchmarks check that it
    uses the indexes)."""
    asked = [n for n, values in enumerate(rows) if any(values.get(c) for c in LOOKUPS)]
    statement, params = await _statement(caller, rows, asked, (), 10)
    return "\n".join(row[0] for row in await _fetch(f"EXPLAIN {statement}", params))


async def _statement(
    caller: Caller,
    rows: Sequence[Mapping[str, Any]],
    asked: Sequence[int],
    exclude: Collection[uuid.UUID],
    limit_per_row: int,
) -> tuple[str, list[Any]]:
    sql = Numbered()
    given = [
        sql.value([str(rows[n][column]) if rows[n].get(column) else None for n in asked])
        for column in LOOKUPS
    ]
    access = await customer_access(caller)
    visible = sql.add(access.rows)
    excluded = f" AND c.id <> ALL({sql.value(list(exclude))}::uuid[])" if exclude else ""
    similarity = "dangan_ext.similarity(dedup_name(c.name), q.dedup)"
    flags = [f"COALESCE(c.{column} = q.{column}, FALSE) AS same_{column}" for column in _EXACT]
    # Every test is NULL (not a match) when the row lacks that value. The exact tests use
    # the btree indexes and the name test the GIN index (at pg_trgm's own threshold,
    # 0.3), one bitmap scan per input row; the comparison keeps names similar enough.
    tests = [f"c.{column} = q.{column}" for column in _EXACT]
    tests.append(
        f"(dedup_name(c.name) OPERATOR(dangan_ext.%) q.dedup AND {similarity} >= {NAME_SIMILARITY})"
    )
    order = "same_id_number DESC, same_uscc DESC, same_phone DESC, name_similarity DESC"
    statement = (
        f"SELECT q.n, d.* FROM"
        f" (SELECT n, phone, id_number, uscc, dedup_name(name) AS dedup"
        f" FROM unnest({', '.join(f'{array}::text[]' for array in given)}) WITH ORDINALITY"
        f" AS given({', '.join(LOOKUPS)}, n)) q"
        f" CROSS JOIN LATERAL (SELECT c.id, {', '.join(flags)},"
        f" COALESCE({similarity}, 0)::real AS name_similarity,"
        f" COALESCE({visible}, FALSE) AS visible"
        f" FROM customer c WHERE c.status <> 'MERGED'{excluded} AND ({' OR '.join(tests)})"
        f" ORDER BY {order}, c.id LIMIT {int(limit_per_row)}) d"
        f" ORDER BY q.n, {order}, d.id"
    )
    return statement, sql.params


async def _fetch(statement: str, params: Sequence[Any]) -> list[Any]:
    """Run the lookup preferring index scans. The planner cannot see each row's name (a
    column, not a constant), so pg_trgm's estimate for the GIN index is pessimistic and
    it would read every customer for every row, computing dedup_name each time (10,000
    customers: 40 ms a row, against under a millisecond through the indexes). The
    previous setting is restored after the statement (a failure undoes it with the
    transaction or savepoint it happened in)."""
    conn = raw_connection()
    previous = await conn.fetchval("SELECT current_setting('enable_seqscan')")
    await conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
    rows = list(await conn.fetch(statement, *params))
    await conn.execute("SELECT set_config('enable_seqscan', $1, true)", previous)
    return rows


async def chinese_names_have_trigrams() -> bool:
    """Whether this database's LC_CTYPE lets pg_trgm see Chinese characters (under "C"
    it doesn't: similar Chinese names would never be found). Checked at start-up."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT dangan_ext.show_trgm('李白') <> '{}' AS ok"
    )
    return bool(rows[0]["ok"])


def _candidate(row: Any) -> Candidate:
    matched = [column for column in ("id_number", "uscc", "phone") if row[f"same_{column}"]]
    if row["name_similarity"] >= NAME_SIMILARITY:
        matched.append("name")
    return Candidate(
        id=row["id"],
        matched_on=tuple(matched),
        name_similarity=round(float(row["name_similarity"]), 3),
        visible=row["visible"],
    )
