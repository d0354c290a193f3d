"""People and departments: identities in ``public``, their membership of a tenant, and
the tenant's own mirror (``member``) and department tree.

One transaction writes all of it, switching into the tenant scope for the tenant's part,
so a person never exists in ``public`` without their tenant-side record or vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from dangan.audit.actions import Recorder
from dangan.services.callers import ROLES, Caller
from dangan.services.errors import BadUserInput
from dangan.services.identifiers import InvalidIdentifier, normalize_account_email
from dangan.services.passwords import hash_password
from dangan.tenants.scope import TenantRef, tenant_part


@dataclass(frozen=True)
class Person:
    identity_id: int
    email: str
    display_name: str
    roles: tuple[str, ...]
    department_id: int | None


def caller_for(tenant: TenantRef, person: Person) -> Caller:
    """The caller a request by ``person`` in ``tenant`` would have (for jobs, the demo
    and tests acting on someone's behalf)."""
    return Caller(
        kind="user",
        id=person.identity_id,
        name=person.display_name,
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        email=person.email,
        roles=frozenset(person.roles),
        department_id=person.department_id,
    )


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise BadUserInput(
            f"role must be one of {', '.join(ROLES)} (got {', '.join(unknown) or 'none'})",
            field="role",
        )
    return sorted(set(roles))


def split_department_path(path: str | None) -> list[str]:
    """``"Sales/East"`` → ``["Sales", "East"]``; empty parts are an error."""
    if path is None:
        return []
    parts = [part.strip() for part in path.split("/")]
    if not all(parts) or any(len(p) > 100 for p in parts):
        raise BadUserInput("department must look like 'Sales/East'", field="department")
    return parts


async def ensure_department_path(conn: BaseDBAsyncClient, parts: list[str]) -> int | None:
    """Find or create each department along the path (inside the tenant scope)."""
    parent: int | None = None
    for name in parts:
        rows = await conn.execute_query_dict(
            "SELECT id FROM department WHERE name = $1 AND parent_id IS NOT DISTINCT FROM $2",
            [name, parent],
        )
        if rows:
            parent = rows[0]["id"]
            continue
        created = await conn.execute_query_dict(
            "INSERT INTO department (name, parent_id) VALUES ($1, $2) RETURNING id",
            [name, parent],
        )
        new_id = created[0]["id"]
        await conn.execute_query(
            "INSERT INTO department_closure (ancestor_id, descendant_id, depth)"
            " SELECT ancestor_id, $1::int, depth + 1 FROM department_closure"
            " WHERE descendant_id = $2::int UNION ALL SELECT $1::int, $1::int, 0",
            [new_id, parent],
        )
        parent = new_id
    return parent


async def create_user(
    tenant: TenantRef,
    email: str,
    roles: list[str],
    *,
    display_name: str | None = None,
    department: str | None = None,
    password: str | None = None,
    record: Recorder | None = None,
) -> Person:
    """Create (or update) a person and their membership of ``tenant``. Idempotent.
    ``record`` (a command's audit log) is given ``user.create`` (a new member of the
    tenant) or ``user.update`` (with the roles before), in the same transaction."""
    try:
        email = normalize_account_email(email)
    except InvalidIdentifier as exc:
        raise BadUserInput(f"email: {exc.reason}", field="email") from exc
    roles = check_roles(roles)
    parts = split_department_path(department)
    name = (display_name or email.split("@")[0]).strip()
    password_hash = hash_password(password) if password else None
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(
            "INSERT INTO public.identity (email, display_name, password_hash)"
            " VALUES ($1, $2, $3) ON CONFLICT (email) DO UPDATE SET"
            " display_name = EXCLUDED.display_name,"
            " password_hash = COALESCE(EXCLUDED.password_hash, public.identity.password_hash)"
            " RETURNING id",
            [email, name, password_hash],
        )
        identity_id = rows[0]["id"]
        async with tenant_part(conn, tenant):
            department_id = await ensure_department_path(conn, parts)
            before = await conn.execute_query_dict(
                "SELECT roles, active FROM member WHERE identity_id = $1 FOR UPDATE",
                [identity_id],
            )
            await conn.execute_query(
                "INSERT INTO member (identity_id, email, display_name, roles, department_id)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity_id) DO UPDATE SET"
                " email = EXCLUDED.email, display_name = EXCLUDED.display_name,"
                " roles = EXCLUDED.roles, department_id = EXCLUDED.department_id,"
                " active = true, updated_at = now()",
                [identity_id, email, name, roles, department_id],
            )
            if record is not None:
                details: dict[str, object] = {
                    "identity": identity_id,
                    "account": email,
                    "displayName": name,
                    "roles": roles,
                    "department": department,
                    "passwordSet": password is not None,
                }
                if before:
                    details["rolesBefore"] = sorted(before[0]["roles"])
                await record("user.update" if before else "user.create", details)
        await conn.execute_query(
            "INSERT INTO public.membership (identity_id, tenant_id, roles, department_id)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (identity_id, tenant_id) DO UPDATE SET"
            " roles = EXCLUDED.roles, department_id = EXCLUDED.department_id",
            [identity_id, tenant.id, roles, department_id],
        )
    return Person(identity_id, email, name, tuple(roles), department_id)
