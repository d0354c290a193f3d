"""Reading attachments as a caller may see them, in SQL: the customer must be visible and
the attachment's class (by category) shown on it; the file itself only where that class
is shown in full. A caller who sees the class only masked lists the attachment with its
name masked (``****.pdf``: a file name such as 张三身份证.jpg would tell too much) and
without its size, checksum, contract or reason for deletion (:data:`FULL_ONLY`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from dangan.authz.access import CustomerAccess
from dangan.authz.predicates import Numbered, Predicate
from dangan.models.archive import FieldSpec
from dangan.services.attachments.checks import CATEGORY_CLASSES
from dangan.tenants.scope import raw_connection

FROM = "FROM attachment a JOIN customer c ON c.id = a.customer_id"


def class_predicate(access: CustomerAccess, sensitivity: str, level: str) -> Predicate:
    """When ``sensitivity`` is shown to the caller on customer ``c``: "full" or "shown"
    (full or masked)."""
    field = access.class_field("*", FieldSpec(sensitivity, "text"))
    return field.full if level == "full" else field.shown


def category_case(sql: Numbered, access: CustomerAccess, level: str) -> str:
    """SQL: whether attachment ``a``'s class is shown at ``level`` on its customer."""
    branches = " ".join(
        f"WHEN '{category}' THEN {sql.add(class_predicate(access, sensitivity, level))}"
        for category, sensitivity in CATEGORY_CLASSES.items()
    )
    return f"COALESCE(CASE a.category {branches} END, FALSE)"


# What an attachment tells about the file beyond its category and dates: shown only
# where its class is shown in full (they have no masked form), as in the history.
FULL_ONLY = ("contract_id", "size_bytes", "sha256", "delete_reason")


def _select(sql: Numbered, access: CustomerAccess) -> str:
    """SELECT … FROM for attachments ``a`` of customers ``c`` as the caller sees them
    (whether the class is shown in full is decided once per row, in ``f``)."""
    full = category_case(sql, access, "full")
    guarded = "".join(
        f" CASE WHEN f.full_access THEN a.{column} END AS {column}," for column in FULL_ONLY
    )
    return (
        "SELECT a.id, a.customer_id, a.category, a.content_type, a.status, a.uploaded_by,"
        f" a.created_at, a.stored_at, a.deleted_at, a.deleted_by,{guarded} f.full_access,"
        " CASE WHEN f.full_access THEN a.filename ELSE '****' ||"
        r" COALESCE(substring(a.filename from '(\.[A-Za-z0-9]{1,8})$'), '') END AS filename"
        f" {FROM} CROSS JOIN LATERAL (SELECT {full} AS full_access) f"
    )


async def attachment_view(access: CustomerAccess, attachment_id: uuid.UUID) -> Any:
    """One attachment as the caller may see it (any status), or None."""
    sql = Numbered()
    select = _select(sql, access)
    return await raw_connection().fetchrow(
        f"{select} WHERE a.id = {sql.value(attachment_id)}"
        f" AND {sql.add(access.rows)} AND {category_case(sql, access, 'shown')}",
        *sql.params,
    )


async def attachments_of_customers(
    access: CustomerAccess, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """Stored and deleted attachments of these customers that the caller may see, oldest
    first, in one query. Uploads not completed yet are not part of the archive."""
    sql = Numbered()
    select = _select(sql, access)
    ids = sql.value(list(customer_ids))
    rows = await raw_connection().fetch(
        f"{select} WHERE a.customer_id = ANY({ids}::uuid[])"
        f" AND a.status <> 'PENDING' AND {sql.add(access.rows)}"
        f" AND {category_case(sql, access, 'shown')} ORDER BY a.created_at, a.id",
        *sql.params,
    )
    found: dict[uuid.UUID, list[Any]] = {uid: [] for uid in customer_ids}
    for row in rows:
        found[row["customer_id"]].append(row)
    return found


async def locked_rights(access: CustomerAccess, attachment_id: uuid.UUID) -> Any:
    """The attachment row (locked for this transaction) with the caller's rights on it:
    ``visible`` (customer seen and class shown) and ``editable``."""
    sql = Numbered()
    return await raw_connection().fetchrow(
        f"SELECT a.*, COALESCE({sql.add(access.rows)}, FALSE)"
        f" AND {category_case(sql, access, 'shown')} AS visible,"
        f" COALESCE({sql.add(access.can('edit'))}, FALSE) AS editable"
        f" {FROM} WHERE a.id = {sql.value(attachment_id)} FOR UPDATE OF a",
        *sql.params,
    )
