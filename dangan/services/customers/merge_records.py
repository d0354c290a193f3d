"""Moving a customer's related records to another customer, and exactly those back.

Used by merges (:mod:`dangan.services.customers.merges`): every row that hangs off a
customer by ``customer_id`` moves, and the ids of what moved are kept so an undo can
return precisely those rows (not ones added to the survivor since). Share requests name
customers in ``share_request_customer`` (primary key request × customer): a request
that already names the survivor just loses its pair with the merged customer, and the
undo puts that pair back.
"""

from __future__ import annotations

import uuid
from typing import Any

from dangan.tenants.scope import raw_connection

# Tables of records about a customer → the type of their ``id`` column.
RELATED_TABLES: dict[str, str] = {
    "contact_person": "uuid",
    "communication": "uuid",
    "opportunity": "uuid",
    "purchase": "uuid",
    "contract": "uuid",
    "payment_record": "uuid",
    "customer_need": "uuid",
    "complaint": "uuid",
    "satisfaction_survey": "uuid",
    "attachment": "uuid",
    "field_reveal": "bigint",
    "customer_rating": "bigint",
}
# Records that point at another record of the same customer: (table, column, target).
REFERENCES = (
    ("communication", "contact_person_id", "contact_person"),
    ("payment_record", "contract_id", "contract"),
    ("attachment", "contract_id", "contract"),
)
SHARES = "share_request_customer"
SHARES_DROPPED = "share_request_customer.dropped"


async def move_records(survivor: uuid.UUID, other: uuid.UUID) -> dict[str, list[str]]:
    """Give ``other``'s records to ``survivor``; returns table → ids of what moved (for
    share requests: the request ids moved, and those dropped as already shared)."""
    conn = raw_connection()
    moved: dict[str, list[str]] = {}
    for table in RELATED_TABLES:
        rows = await conn.fetch(
            f"UPDATE {table} SET customer_id = $1 WHERE customer_id = $2 RETURNING id::text",
            survivor,
            other,
        )
        moved[table] = sorted(row[0] for row in rows)
    dropped = await conn.fetch(
        f"DELETE FROM {SHARES} o WHERE o.customer_id = $2 AND EXISTS (SELECT 1 FROM {SHARES} s"
        " WHERE s.request_id = o.request_id AND s.customer_id = $1) RETURNING request_id::text",
        survivor,
        other,
    )
    shared = await conn.fetch(
        f"UPDATE {SHARES} SET customer_id = $1 WHERE customer_id = $2 RETURNING request_id::text",
        survivor,
        other,
    )
    moved[SHARES] = sorted(row[0] for row in shared)
    moved[SHARES_DROPPED] = sorted(row[0] for row in dropped)
    return {table: ids for table, ids in moved.items() if ids}


async def stranded_references(survivor: uuid.UUID, moved: dict[str, Any]) -> list[str]:
    """Tables of the survivor's own records (not among ``moved``) that point at a record
    that an undo would give back: afterwards they would point at another customer's."""
    conn = raw_connection()
    stranded = []
    for table, column, target in REFERENCES:
        if not moved.get(target):
            continue
        found = await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE customer_id = $1"
            f" AND {column} = ANY($2::uuid[]) AND NOT (id = ANY($3::uuid[])))",
            survivor,
            moved[target],
            moved.get(table, []),
        )
        if found:
            stranded.append(table)
    return stranded


async def return_records(survivor: uuid.UUID, other: uuid.UUID, moved: dict[str, Any]) -> None:
    """Give back to ``other`` the records :func:`move_records` moved, where the
    survivor still has them (a record deleted since stays deleted)."""
    conn = raw_connection()
    for table, id_type in RELATED_TABLES.items():
        ids = moved.get(table)
        if ids:
            await conn.execute(
                f"UPDATE {table} SET customer_id = $1"
                f" WHERE customer_id = $2 AND id = ANY($3::text[]::{id_type}[])",
                other,
                survivor,
                ids,
            )
    requests = moved.get(SHARES, [])
    restored = [*requests, *moved.get(SHARES_DROPPED, [])]
    if restored:
        await conn.execute(
            f"INSERT INTO {SHARES} (request_id, customer_id)"
            " SELECT id, $1 FROM share_request WHERE id = ANY($2::uuid[]) ON CONFLICT DO NOTHING",
            other,
            restored,
        )
    if requests:
        await conn.execute(
            f"DELETE FROM {SHARES} WHERE customer_id = $1 AND request_id = ANY($2::uuid[])",
            survivor,
            requests,
        )
