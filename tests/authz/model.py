"""What the default policy promises, written out a second time, independently of the code.

The tests compare the API with this model: which customers each caller sees, and for
each field whether it is shown in full, masked (in the form given here) or hidden. The
expectations are computed from the rows as they are in the database at test time, so
customers created by other tests don't upset them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from dangan.models.archive import CUSTOMER_FIELDS, SENSITIVITY_CLASSES
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import TenantWorld

USERS = ("admin", "manager", "sales", "sales2", "auditor")
APPS = ("reader", "writer")
CALLERS = (*USERS, *APPS)
ROLE_OF = {
    "admin": "admin",
    "manager": "manager",
    "sales": "sales",
    "sales2": "sales",
    "auditor": "auditor",
}

FULL, MASKED, HIDDEN = "full", "masked", "hidden"

# The default policy, per role and sensitivity class, for the customers the role sees.
LEVELS: dict[str, dict[str, str]] = {
    "admin": dict.fromkeys(SENSITIVITY_CLASSES, FULL),
    "manager": {**dict.fromkeys(SENSITIVITY_CLASSES, FULL), "identity": MASKED},
    "sales": {**dict.fromkeys(SENSITIVITY_CLASSES, FULL), "identity": MASKED, "financial": HIDDEN},
    "auditor": {**dict.fromkeys(SENSITIVITY_CLASSES, MASKED), "basic": FULL},
}

# GraphQL field → column, for the fields the tests select.
GQL_COLUMNS: dict[str, str] = {
    "name": "name",
    "kind": "kind",
    "region": "region",
    "tier": "tier",
    "tags": "tags",
    "version": "version",
    "consentsToSharing": "consents_to_sharing",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "wechat": "wechat",
    "idNumber": "id_number",
    "uscc": "uscc",
    "birthday": "birthday",
    "gender": "gender",
    "creditRating": "credit_rating",
    "paymentCapacity": "payment_capacity",
    "annualRevenue": "annual_revenue",
    "remarks": "remarks",
}
SELECTION = " ".join(GQL_COLUMNS)


def _amount_range(value: Decimal) -> str:
    if value < 100_000:
        return "< 100,000"
    if value < 1_000_000:
        return "100,000 – 1,000,000"
    if value < 10_000_000:
        return "1,000,000 – 10,000,000"
    return "≥ 10,000,000"


def _email(value: str) -> str:
    local, domain = value.split("@")
    return f"{local[0]}***@{domain}"


# The masked forms the product promises (DESIGN.md, policies/customers.polar).
MASKS: dict[str, Callable[[Any], str]] = {
    "mobile": lambda v: f"{v[:3]}****{v[-4:]}",
    "id_number": lambda v: f"{v[:6]}********{v[-4:]}",
    "uscc": lambda v: f"{v[:8]}******{v[-4:]}",
    "email": _email,
    "address": lambda v: f"{v[:6]}****",
    "wechat": lambda v: f"{v[:2]}****",
    "birthday": lambda v: f"{v.year:04d}-**-**",
    "rating": lambda v: v[0] + "**",
    "amount": _amount_range,
    "text": lambda v: "[withheld]",
}


def api_value(value: Any) -> Any:
    """A column value as the API shows it in full."""
    if value is None or isinstance(value, bool | int | list):
        return value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Who:
    key: str  # admin, manager, sales, sales2, auditor, reader, writer
    role: str | None  # the policy role of a user; None for a partner app
    id: int
    department_id: int | None

    @property
    def is_app(self) -> bool:
        return self.role is None


@dataclass
class Snapshot:
    """One tenant as the database holds it: every customer (all columns), the manager's
    department tree, the partner apps' ids and how many share grants count right now."""

    tenant: TenantWorld
    rows: list[dict[str, Any]]
    tree: frozenset[int]
    app_ids: dict[str, int]
    grants: int

    def who(self, key: str) -> Who:
        if key in APPS:
            return Who(key, None, self.app_ids[key], None)
        person = self.tenant.people[key]
        return Who(key, ROLE_OF[key], person.identity_id, person.department_id)

    def credential(self, key: str) -> str:
        return self.tenant.keys[key] if key in APPS else self.tenant.tokens[key]

    def row(self, customer_id: Any) -> dict[str, Any]:
        return next(r for r in self.rows if str(r["id"]) == str(customer_id))

    def visible(self, who: Who, row: dict[str, Any]) -> bool:
        assert self.grants == 0, "the model covers a world without share grants"
        if who.is_app:
            return False  # nothing is shared with any app
        if who.role in ("admin", "auditor"):
            return True
        if who.role == "manager":
            return row["department_id"] in self.tree
        return row["owner_id"] == who.id

    def visible_rows(self, who: Who) -> list[dict[str, Any]]:
        return [row for row in self.rows if self.visible(who, row)]


def level(who: Who, column: str) -> str:
    """How ``who`` sees ``column`` on a customer they see (no grants in the world)."""
    spec = CUSTOMER_FIELDS[column]
    if who.is_app:
        return HIDDEN
    found = LEVELS[who.role][spec.sensitivity]
    if found == MASKED and spec.mask is None:
        return HIDDEN  # no masked form: masked means hidden
    return found


def expected(who: Who, row: dict[str, Any], column: str) -> tuple[str, Any]:
    """(level, value as the API must show it) of one field of a visible customer."""
    found = level(who, column)
    raw = row[column]
    if found == FULL:
        return found, api_value(raw)
    if found == MASKED:
        rule = CUSTOMER_FIELDS[column].mask
        assert rule is not None
        return found, None if raw is None else MASKS[rule](raw)
    return found, None


def filter_mode(who: Who, column: str, op: str) -> str:
    """What a `where` condition on ``column`` with ``op`` does for ``who``:
    "unknown" (refused exactly like a field that doesn't exist), "masked" (refused:
    only exact matches where the policy grants them), "match" (exact match on a masked
    value), or "full"."""
    spec = CUSTOMER_FIELDS[column]
    if who.is_app:
        # Apps with customers:read may be granted basic, contact, business, notes, never
        # identity/financial; an app without that scope is granted nothing at all.
        if who.key == "writer" or spec.sensitivity in ("identity", "financial"):
            return "unknown"
        return "full"  # allowed, but nothing is shared: matches nothing
    found = level(who, column)
    if found == HIDDEN:
        return "unknown"
    if found == FULL:
        return "full"
    if op == "EQ" and who.role == "auditor" and spec.sensitivity == "contact":
        return "match"
    return "masked"


def parse_value(column: str, raw: str) -> Any:
    if column == "birthday":
        return date.fromisoformat(raw)
    if column in ("payment_capacity", "annual_revenue"):
        return Decimal(raw)
    if column in ("owner_id", "department_id", "version"):
        return int(raw)
    return raw


def matches(op: str, value: Any, args: list[Any]) -> bool:
    if op == "IS_NULL":
        return value is None
    if value is None:
        return False
    if op == "EQ":
        return bool(value == args[0])
    if op == "NE":
        return bool(value != args[0])
    if op == "IN":
        return value in args
    if op == "CONTAINS":
        return str(args[0]).lower() in str(value).lower()
    if op == "GT":
        return bool(value > args[0])
    raise AssertionError(op)


async def snapshot(tenant: TenantWorld) -> Snapshot:
    manager_department = tenant.people["manager"].department_id

    async def read() -> Snapshot:
        conn = raw_connection()
        rows = await conn.fetch("SELECT * FROM customer ORDER BY created_at, id")
        tree = await conn.fetch(
            "SELECT descendant_id FROM department_closure WHERE ancestor_id = $1",
            manager_department,
        )
        apps = await conn.fetch("SELECT id, name FROM partner_app")
        grants = await conn.fetchval("SELECT count(*) FROM share_grant")
        return Snapshot(
            tenant=tenant,
            rows=[dict(row) for row in rows],
            tree=frozenset(r["descendant_id"] for r in tree),
            app_ids={r["name"]: r["id"] for r in apps},
            grants=grants,
        )

    return await run_in_tenant(tenant.ref, read)


# Values whose full form must never reach a caller who may not see them in full.
SECRET_COLUMNS = (
    "phone",
    "email",
    "id_number",
    "uscc",
    "wechat",
    "annual_revenue",
    "credit_rating",
    "remarks",
    "address",
)


def secret_text(column: str, value: Any) -> str:
    """How a full value would look in the JSON body (ratings quoted: 'AA' is short)."""
    text = str(value)
    return f'"{text}"' if column == "credit_rating" else text


def forbidden_values(
    who: Who, snapshots: Iterable[Snapshot], own: Snapshot
) -> dict[str, tuple[str, str]]:
    """Text of every secret value ``who`` may not see in full — in any tenant — minus
    values they legitimately see in full somewhere in their own tenant (two customers
    can share a value). Maps the text to (customer id, column) for messages."""
    allowed: set[str] = set()
    for row in own.rows:
        if own.visible(who, row):
            for column in SECRET_COLUMNS:
                if row[column] is not None and level(who, column) == FULL:
                    allowed.add(secret_text(column, row[column]))
    found: dict[str, tuple[str, str]] = {}
    for snap in snapshots:
        for row in snap.rows:
            seen = snap is own and own.visible(who, row)
            for column in SECRET_COLUMNS:
                if row[column] is None or (seen and level(who, column) == FULL):
                    continue
                text = secret_text(column, row[column])
                if text not in allowed:
                    found[text] = (str(row["id"]), column)
    return found
