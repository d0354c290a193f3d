"""Reading the change record (修改须记录) as the viewer's policy allows: a customer's
timeline, the changes waiting on customers, and single changes.

Each stored value is shown in full, masked or not at all by the class of its field on
that customer, exactly as the field itself would be (customer columns by
``CUSTOMER_FIELDS``, related records by ``RECORD_TYPES``: a record's field also needs
the record's class to be shown). Masking happens in SQL (the stored text is cast back to
a number or a date for the amount and birthday rules), so no hidden value leaves the
database.

A field hidden from the viewer is left out of the change altogether, not shown as a
null: even "this field changed on that day" says something about a value one may not
see (a credit rating that keeps being revised). A change none of whose fields the viewer
may see is left out of the timeline the same way.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from dangan.authz.access import CustomerAccess, FieldAccess
from dangan.authz.capabilities import check_allowed
from dangan.authz.masking import masked_sql
from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.authz.store import customer_access
from dangan.models.archive import CUSTOMER_FIELDS, FieldSpec
from dangan.models.records import RECORD_TYPES
from dangan.services.attachments.checks import ATTACHMENT_CHANGE_FIELDS, CATEGORY_CLASSES
from dangan.services.callers import Caller
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, NotFound
from dangan.tenants.scope import raw_connection

MAX_PAGE = 200
# What a change's fields are read as: a merge changes customer fields; an attachment's
# fields take the class of its category.
_KEY = (
    "CASE ch.record_type WHEN 'customer_merge' THEN 'customer'"
    " WHEN 'attachment' THEN 'attachment_' || lower(a.category) ELSE ch.record_type END"
)
# Mask rules whose column is not text: the stored text is cast back before masking.
_CASTS = {"amount": "numeric", "birthday": "date"}
_CHANGE_COLUMNS = (
    "ch.id, ch.customer_id, ch.action, ch.record_type, ch.record_id, ch.status, ch.reason,"
    " ch.actor_kind, ch.actor_id, ch.at, ch.base_version, ch.decided_by, ch.decided_at,"
    " ch.decision_comment"
)


@dataclass(frozen=True)
class ChangePage:
    rows: list[Any]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.rows[-1]["id"]) if self.rows else None


def encode_cursor(change_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["change", change_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        tag, change_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if tag != "change" or not isinstance(change_id, int):
            raise ValueError(cursor)
        return change_id
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadUserInput("after is not a cursor of this listing", field="after") from exc


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")


class _Flags:
    """Distinct policy predicates on the customer row, each evaluated once per customer
    (``__pN`` of CTE ``s``, read through the field rows as ``f.__pN``)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, tuple[object, ...]], tuple[str, Predicate]] = {}

    def ref(self, predicate: Predicate) -> str:
        if predicate.always or predicate.never:
            return predicate.sql
        key = (predicate.sql, predicate.params)
        if key not in self.items:
            self.items[key] = (f"__p{len(self.items)}", predicate)
        return f"f.{self.items[key][0]}"

    def select(self, sql: Numbered) -> str:
        return "".join(f", {sql.add(p)} AS {name}" for name, p in self.items.values())


def _fields(access: CustomerAccess) -> list[tuple[str, FieldAccess, Predicate]]:
    """(record_type.field, its access, when the record itself is shown) for every field
    a change may carry."""
    found = [
        (f"customer.{column}", field, Predicate("TRUE"))
        for column in CUSTOMER_FIELDS
        if (field := access.field(column)) is not None
    ]
    for table, record in RECORD_TYPES.items():
        shown = access.class_field("*", FieldSpec(record.sensitivity, "text")).shown
        for column, spec in record.fields.items():
            found.append((f"{table}.{column}", access.class_field(column, spec), shown))
    # An attachment's class depends on its category (an ID copy is identity, a contract
    # scan business): its changes are keyed by category (see _KEY).
    for category, sensitivity in CATEGORY_CLASSES.items():
        shown = access.class_field("*", FieldSpec(sensitivity, "text")).shown
        for column in ATTACHMENT_CHANGE_FIELDS:
            spec = FieldSpec(sensitivity)
            key = f"attachment_{category.lower()}.{column}"
            found.append((key, access.class_field(column, spec), shown))
    return found


def _level_sql(flags: _Flags, fields: Sequence[tuple[str, FieldAccess, Predicate]]) -> str:
    """'F' (full), 'M' (masked) or NULL (hidden) for the field of each change row."""
    branches = []
    for key, field, shown in fields:
        full = all_of([shown, field.full])
        masked = all_of([shown, field.masked]) if field.mask_rule else Predicate("FALSE")
        if full.never and masked.never:
            continue
        level = f"WHEN {flags.ref(full)} THEN 'F'"
        if not masked.never:
            level += f" WHEN {flags.ref(masked)} THEN 'M'"
        branches.append(f"WHEN '{key}' THEN CASE {level} END")
    if not branches:
        return "NULL::text"
    return f"CASE f.key {' '.join(branches)} END"


def _value_sql(fields: Sequence[tuple[str, FieldAccess, Predicate]], value: str) -> str:
    """The stored value as its level allows: in full, masked by its field's rule, or NULL."""
    by_rule: dict[str, list[str]] = {}
    for key, field, _ in fields:
        if field.mask_rule is not None:
            by_rule.setdefault(field.mask_rule, []).append(key)
    masks = []
    for rule, keys in by_rule.items():
        cast = f"({value})::{_CASTS[rule]}" if rule in _CASTS else value
        listed = ", ".join(f"'{key}'" for key in keys)
        masks.append(f"WHEN f.key IN ({listed}) THEN {masked_sql(rule, cast)}")
    masked = f"CASE {' '.join(masks)} END" if masks else "NULL"
    return f"CASE f.level WHEN 'F' THEN {value} WHEN 'M' THEN {masked} END"


async def read_changes(
    access: CustomerAccess,
    customers: Predicate,
    changes: Predicate,
    *,
    limit: int,
    before: int | None = None,
) -> ChangePage:
    """Changes (newest first) of the customers matching ``customers`` (alias ``c``) that
    match ``changes`` (alias ``ch``), each with the fields the viewer may see."""
    flags = _Flags()
    fields = _fields(access)
    level = _level_sql(flags, fields)
    sql = Numbered()
    seen = f"SELECT c.id{flags.select(sql)} FROM customer c WHERE {sql.add(customers)}"
    keyset = f" AND ch.id < {sql.value(before)}" if before is not None else ""
    rows = await raw_connection().fetch(
        f"WITH s AS ({seen}),"
        " k AS (SELECT ch.id AS change_id, f.field, f.old_value, f.new_value,"
        f" {_KEY} || '.' || f.field AS key, s.*"
        " FROM s JOIN customer_change ch ON ch.customer_id = s.id"
        " JOIN customer_change_field f ON f.change_id = ch.id"
        " LEFT JOIN attachment a ON ch.record_type = 'attachment' AND a.id = ch.record_id"
        f" WHERE {sql.add(changes)}{keyset}),"
        f" l AS (SELECT f.*, {level} AS level FROM k f),"
        " v AS (SELECT f.change_id, jsonb_agg(jsonb_build_array(f.field,"
        f" {_value_sql(fields, 'f.old_value')}, {_value_sql(fields, 'f.new_value')})"
        " ORDER BY f.field) AS fields FROM l f WHERE f.level IS NOT NULL GROUP BY f.change_id)"
        f" SELECT {_CHANGE_COLUMNS}, v.fields,"
        " COALESCE(m.display_name, p.name) AS actor_name, d.display_name AS decider_name"
        " FROM v JOIN customer_change ch ON ch.id = v.change_id"
        " LEFT JOIN member m ON ch.actor_kind = 'user' AND m.identity_id = ch.actor_id"
        " LEFT JOIN partner_app p ON ch.actor_kind = 'app' AND p.id = ch.actor_id"
        " LEFT JOIN member d ON d.identity_id = ch.decided_by"
        f" ORDER BY ch.id DESC LIMIT {int(limit) + 1}",
        *sql.params,
    )
    return ChangePage(rows=list(rows[:limit]), has_next=len(rows) > limit)


def field_values(row: Any) -> list[tuple[str, str | None, str | None]]:
    """(column, old, new) of a change row read by :func:`read_changes`."""
    raw = row["fields"]
    items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return [(str(item[0]), item[1], item[2]) for item in items]


async def customer_history(
    caller: Caller, customer_id: str, first: int = 50, after: str | None = None
) -> ChangePage:
    """The timeline of one customer the caller sees (NOT_FOUND otherwise), newest first."""
    check_allowed(caller, "customer.read")
    check_page_size(first)
    before = decode_cursor(after) if after is not None else None
    uid = parse_customer_id(customer_id)
    access = await customer_access(caller)
    customers = all_of([Predicate("c.id = ?", (uid,)), access.rows, LIVE])
    sql = Numbered()
    visible = await raw_connection().fetchval(
        f"SELECT EXISTS (SELECT 1 FROM customer c WHERE {sql.add(customers)})", *sql.params
    )
    if not visible:
        raise NotFound("no customer with this id")
    return await read_changes(access, customers, Predicate("TRUE"), limit=first, before=before)


async def pending_for_customers(caller: Caller, ids: Sequence[str]) -> dict[str, list[Any]]:
    """Pending changes of each of these customers that the caller sees (one query)."""
    access = await customer_access(caller)
    uids = [uuid.UUID(raw) for raw in ids]
    customers = all_of([Predicate("c.id = ANY(?)", (uids,)), access.rows])
    found: dict[str, list[Any]] = {raw: [] for raw in ids}
    if customers.never:
        return found
    page = await read_changes(
        access, customers, Predicate("ch.status = 'PENDING'"), limit=MAX_PAGE * len(ids)
    )
    for row in page.rows:
        found.setdefault(str(row["customer_id"]), []).append(row)
    return found


async def change_for_caller(caller: Caller, change_id: int) -> Any:
    """One change as the caller may see it (after deciding on it, say)."""
    access = await customer_access(caller)
    page = await read_changes(access, access.rows, Predicate("ch.id = ?", (change_id,)), limit=1)
    if not page.rows:
        raise NotFound("no change with this id")
    return page.rows[0]
