"""A customer's lifecycle (状态): ACTIVE, INVALID (无效), EXPIRED (过期), and MERGED.

Whoever may edit a customer may set ACTIVE, INVALID or EXPIRED, with a reason; each
change is recorded (action ``status``) and bumps ``version``. MERGED is set only by a
merge of duplicates: a merged customer no longer answers (NOT_FOUND), so its status
can't be set either. Lists show every status but MERGED (filter with ``where`` on
``status``).
"""

from __future__ import annotations

from dangan.authz.capabilities import check_allowed
from dangan.authz.predicates import Numbered, all_of
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.changes import record_change
from dangan.services.customers.reads import LIVE, parse_customer_id
from dangan.services.errors import BadUserInput, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

SETTABLE = ("ACTIVE", "INVALID", "EXPIRED")


async def set_customer_status(caller: Caller, customer_id: str, status: str, reason: str) -> str:
    """Set the status of a customer the caller may edit; returns its id."""
    check_allowed(caller, "customer.update")
    uid = parse_customer_id(customer_id)
    if status not in SETTABLE:
        raise BadUserInput(f"status must be one of {', '.join(SETTABLE)}", field="status")
    cleaned = " ".join(reason.split())
    if not 1 <= len(cleaned) <= 500:
        raise BadUserInput("reason must be 1 to 500 characters", field="reason")
    access = await customer_access(caller)
    async with raw_connection().savepoint():
        sql = Numbered()
        row = await raw_connection().fetchrow(
            f"SELECT c.status, {sql.add(all_of([access.rows, LIVE]))} AS visible,"
            f" COALESCE({sql.add(access.can('edit'))}, FALSE) AS editable"
            f" FROM customer c WHERE c.id = {sql.value(uid)} FOR UPDATE",
            *sql.params,
        )
        if row is None or not row["visible"]:
            raise NotFound("no customer with this id")
        if not row["editable"]:
            raise Forbidden("your access does not allow changing this customer")
        if row["status"] == status:
            raise BadUserInput(f"the customer is already {status}", field="status")
        updated_by = caller.id if caller.kind == "user" else None
        await raw_connection().execute(
            "UPDATE customer SET status = $2, status_changed_at = now(), updated_at = now(),"
            " updated_by = $3, version = version + 1 WHERE id = $1",
            uid,
            status,
            updated_by,
        )
        await record_change(
            caller, uid, "status", {"status": (row["status"], status)}, reason=cleaned
        )
    return str(uid)
