"""Refusing duplicates when a customer is created or its identifiers change (避免重复录入).

A certain duplicate (same ID number or USCC) is always refused; a possible one (same
mobile number, similar name) is refused unless the caller says it is a different
customer (``allowPossibleDuplicate``). The refusal (CONFLICT) lists the candidates the
caller may see, each as they see it: id, name (masked as their policy says), what
matched and how similar the names are. A candidate they may not see — or whose matching
field they may not see — is never described: the refusal only says that one exists
and names the tenant's administrators, who can look.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dangan.authz.predicates import Numbered
from dangan.authz.store import customer_access
from dangan.services.callers import Caller
from dangan.services.customers.duplicates import Candidate, find_duplicates
from dangan.services.customers.inputs import api_name
from dangan.services.errors import Conflict
from dangan.tenants.scope import raw_connection

LOOKUP_COLUMNS = ("name", "phone", "id_number", "uscc")
IDENTIFIERS = ("id_number", "uscc")


async def check_not_duplicate(
    caller: Caller,
    values: Mapping[str, Any],
    *,
    allow_possible: bool = False,
    exclude: uuid.UUID | None = None,
) -> None:
    """Raise CONFLICT if ``values`` (normalised columns) describe a customer the tenant
    already has: always for the same ID number or USCC, for the same mobile number or
    a similar name unless ``allow_possible``. ``exclude``: the customer being changed."""
    lookups = {column: values[column] for column in LOOKUP_COLUMNS if values.get(column)}
    if not lookups:
        return
    # Two requests entering the same identifier at once must not both pass the check:
    # the second waits here until the first one's transaction ends.
    for column in IDENTIFIERS:
        if column in lookups:
            await raw_connection().execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"customer.{column}:{lookups[column]}"
            )
    found = await find_duplicates(caller, lookups, exclude=exclude)
    blocking = [c for c in found if c.certain or not allow_possible]
    if blocking:
        raise await duplicate_conflict(caller, blocking)


async def check_identifiers_unique(
    caller: Caller, values: Mapping[str, Any], customer_id: uuid.UUID
) -> None:
    """Raise CONFLICT if a change gives ``customer_id`` an ID number or USCC that
    another customer of the tenant already has."""
    identifiers = {column: values[column] for column in IDENTIFIERS if values.get(column)}
    await check_not_duplicate(caller, identifiers, exclude=customer_id)


async def duplicate_conflict(caller: Caller, candidates: Sequence[Candidate]) -> Conflict:
    """The CONFLICT for ``candidates``, telling the caller only what they may know."""
    shown = await _as_seen_by(caller, [c for c in candidates if c.visible])
    described = {entry["id"] for entry in shown}
    hidden = any(str(c.id) not in described for c in candidates)
    certain = any(c.certain for c in candidates)
    details: dict[str, object] = {"duplicates": shown, "overridable": not certain}
    parts = []
    if shown:
        parts.append(
            f"{len(shown)} existing customer(s) you can see look like this one"
            " (see extensions.duplicates)"
        )
    if hidden:
        admins = await administrators()
        details["hiddenDuplicate"] = True
        details["askAdministrators"] = admins
        parts.append(
            "a customer you may not see may be the same one; ask an administrator"
            f" ({', '.join(admins) or 'of this tenant'}) to check"
        )
    advice = (
        "a customer with the same ID number or USCC cannot be entered twice"
        if certain
        else "if it is a different customer, send allowPossibleDuplicate: true"
    )
    matched = [name for entry in shown for name in entry["matchedOn"]]
    field = next((name for name in ("idNumber", "uscc", "phone", "name") if name in matched), None)
    return Conflict(
        f"possible duplicate: {'; '.join(parts)}; {advice}",
        field=field or "input",
        details=details,
    )


async def administrators() -> list[str]:
    """Display names of the tenant's active administrators (whom to ask)."""
    rows = await raw_connection().fetch(
        "SELECT display_name FROM member WHERE 'admin' = ANY(roles) AND active"
        " ORDER BY display_name"
    )
    return [row["display_name"] for row in rows]


async def _as_seen_by(caller: Caller, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The visible candidates as the caller sees them, each with the matches the caller
    may know of; a candidate with none is left out. An identifier match counts only where
    the caller may test that field exactly (full, or masked with the policy's "match"):
    otherwise the refusal would confirm a guessed ID number the caller sees only masked
    (a 110101********1234 leaves ~366 birth dates to try). A name match counts where the
    name is shown at all."""
    if not candidates:
        return []
    access = await customer_access(caller)
    sql = Numbered()
    projection = access.projection(["name"])
    inner = projection.inner_items(sql)
    flags = []
    for column in LOOKUP_COLUMNS:
        field = access.field(column)
        may = (field.shown if column == "name" else field.exact_match) if field else None
        flags.append(f"COALESCE({sql.add(may) if may else 'FALSE'}, FALSE) AS __may_match_{column}")
    ids = sql.value([c.id for c in candidates])
    passed_on = ", ".join(f"c.__may_match_{column}" for column in LOOKUP_COLUMNS)
    rows = await raw_connection().fetch(
        f"SELECT {projection.outer_items()}, {passed_on}"
        f" FROM (SELECT {inner}, {', '.join(flags)} FROM customer c"
        f" WHERE c.id = ANY({ids}::uuid[]) AND {sql.add(access.rows)}) c",
        *sql.params,
    )
    seen = {row["id"]: row for row in rows}
    described = []
    for candidate in candidates:
        row = seen.get(candidate.id)
        if row is None:
            continue
        matched = [c for c in candidate.matched_on if row[f"__may_match_{c}"]]
        if not matched:
            continue
        described.append(
            {
                "id": str(candidate.id),
                "name": row["name"],
                "matchedOn": [api_name(column) for column in matched],
                "similarity": candidate.name_similarity if "name" in matched else None,
            }
        )
    return described
