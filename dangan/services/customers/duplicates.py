"""Finding likely duplicates of a customer (避免重复录入) within the tenant.

A candidate is an existing customer (not merged away) with the same normalised mobile
number, ID number or USCC, or a name whose distinguishing part (``dedup_name``: no
spaces, no legal form) is similar by trigrams (pg_trgm, GIN-indexed). Every customer of
the tenant is considered, seen by the caller or not; whether the caller may see each
candidate is part of the answer, so the caller is told only what they may know.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
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
    sql = Numbered()
    tests: list[str] = []
    flags: list[str] = []
    for column in ("phone", "id_number", "uscc"):
        value = values.get(column)
        if value:
            test = f"c.{column} = {sql.value(value)}"
            tests.append(test)
            flags.append(f"COALESCE({test}, FALSE) AS same_{column}")
        else:
            flags.append(f"FALSE AS same_{column}")
    name = values.get("name")
    similarity = "0::real"
    if name:
        given = f"dedup_name({sql.value(str(name))}::text)"
        similarity = f"dangan_ext.similarity(dedup_name(c.name), {given})"
        # The operator finds rows through the GIN index (at pg_trgm's own threshold,
        # 0.3); the comparison then keeps the ones similar enough.
        tests.append(
            f"(dedup_name(c.name) OPERATOR(dangan_ext.%) {given}"
            f" AND {similarity} >= {NAME_SIMILARITY})"
        )
    if not tests:
        return []
    access = await customer_access(caller)
    visible = sql.add(access.rows)
    excluded = f" AND c.id <> {sql.value(exclude)}" if exclude is not None else ""
    rows = await raw_connection().fetch(
        f"SELECT c.id, {', '.join(flags)}, {similarity} AS name_similarity,"
        f" COALESCE({visible}, FALSE) AS visible"
        f" FROM customer c WHERE c.status <> 'MERGED'{excluded} AND ({' OR '.join(tests)})"
        f" ORDER BY same_id_number DESC, same_uscc DESC, same_phone DESC,"
        f" name_similarity DESC, c.id LIMIT {int(limit)}",
        *sql.params,
    )
    return [_candidate(row) for row in rows]


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
