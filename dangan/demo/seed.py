"""``dangan demo``: three tenants with staff of every role, a partner app and 1,000
realistic customers each; writes tokens and keys to ``<data_dir>/demo-credentials.json``.

Idempotent: tenants, people and customers are created once (customer ids derive from
the tenant and position); tokens are issued afresh and the partner app's key is rotated,
so the credentials file always holds working credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from dangan.authz.store import POLICIES, load_policies
from dangan.demo.data import demo_customers
from dangan.demo.profiles import seed_profiles
from dangan.services.api_keys import create_app, rotate_app_key
from dangan.services.errors import Conflict
from dangan.services.people import Person, caller_for, create_user
from dangan.services.rating import rate_all_customers
from dangan.services.sharing import Grantee, decide_share, request_share
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.migrations import migrate_tenant
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

DEMO_TENANTS = {"east": "华东子公司", "north": "华北子公司", "south": "华南子公司"}
DEMO_PASSWORD = "dangan-demo-password"
DEMO_APP = "crm-partner"
_PARTNER_PURPOSE = "demo: the partner CRM may contact these consenting customers"
TOKEN_TTL = 30 * 24 * 3600
# role key in the credentials file → (role, department path)
DEMO_STAFF: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "manager": ("manager", "销售部"),
    "sales": ("sales", "销售部/一组"),
    "sales2": ("sales", "销售部/二组"),
    "auditor": ("auditor", "审计部"),
}
_NAMESPACE = uuid.UUID("5f0c4f7e-8d0a-4c59-9d59-6c0a3f1d2b00")

Progress = Callable[[str], None]


async def _tenant(slug: str) -> TenantRef:
    """The demo tenant, created, or brought to the latest schema (a demo seeded by an
    older release gets the new tables before the new data)."""
    tenant = await find_tenant(slug)
    if tenant is None:
        return await create_tenant(slug, DEMO_TENANTS[slug])
    await migrate_tenant(tenant)
    return tenant


async def _seed_customers(tenant: TenantRef, owners: list[Person], count: int) -> int:
    people = demo_customers(tenant.slug, count)
    records = []
    for index, person in enumerate(people):
        owner = owners[index % len(owners)]
        records.append(
            (
                uuid.uuid5(_NAMESPACE, f"{tenant.slug}:{index}"),
                person.kind,
                person.name,
                person.phone,
                person.email,
                person.id_number,
                person.uscc,
                person.address,
                person.region,
                person.tier,
                owner.identity_id,
                owner.department_id,
                owner.identity_id,
                owner.identity_id,
            )
        )

    async def insert() -> int:
        conn = raw_connection()
        before = await conn.fetchval("SELECT count(*) FROM customer")
        await conn.executemany(
            "INSERT INTO customer (id, kind, name, phone, email, id_number, uscc, address,"
            " region, tier, owner_id, department_id, created_by, updated_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            " ON CONFLICT (id) DO NOTHING",
            records,
        )
        return int(await conn.fetchval("SELECT count(*) FROM customer")) - int(before)

    return await run_in_tenant(tenant, insert)


async def _share_with_partner(tenant: TenantRef, staff: dict[str, Person]) -> None:
    """Once: a few of the salesperson's customers consent to sharing and their basic
    facts and contact details (masked) are shared with the partner app, approved by the
    manager for a year — so the partner app sees something, and only that."""
    sales, manager = staff["sales"], staff["manager"]

    async def share() -> None:
        conn = raw_connection()
        if await conn.fetchval(
            "SELECT count(*) FROM share_request WHERE purpose = $1", _PARTNER_PURPOSE
        ):
            return
        ids = [
            row["id"]
            for row in await conn.fetch(
                "UPDATE customer SET consents_to_sharing = true WHERE id IN"
                " (SELECT id FROM customer WHERE owner_id = $1 ORDER BY id LIMIT 20) RETURNING id",
                sales.identity_id,
            )
        ]
        app_id = await conn.fetchval("SELECT id FROM partner_app WHERE name = $1", DEMO_APP)
        if not ids or app_id is None:
            return
        request = await request_share(
            caller_for(tenant, sales),
            grantee=Grantee(kind="app", id=app_id),
            classes=["basic", "contact"],
            level="masked",
            purpose=_PARTNER_PURPOSE,
            until=datetime.now(UTC) + timedelta(days=365),
            customer_ids=[str(i) for i in ids],
        )
        await decide_share(
            caller_for(tenant, manager),
            str(request["id"]),
            approve=True,
            comment="demo: partner onboarding",
        )

    await run_in_tenant(tenant, share)


async def _app_key(tenant: TenantRef) -> str:
    try:
        return (await create_app(tenant, DEMO_APP, ["customers:read"])).key
    except Conflict:
        return (await rotate_app_key(tenant, DEMO_APP)).key


async def seed_demo(
    settings: Settings, base_url: str, progress: Progress = print
) -> dict[str, Any]:
    """Create (or refresh) the demo and return the credentials document."""
    if POLICIES.default is None:
        load_policies(settings)  # the demo's shares are decided by the policies
    tenants: dict[str, Any] = {}
    for slug in DEMO_TENANTS:
        tenant = await _tenant(slug)
        users: dict[str, Any] = {}
        staff: dict[str, Person] = {}
        for key, (role, department) in DEMO_STAFF.items():
            email = f"{key}@{slug}.demo.dangan.cn"
            staff[key] = await create_user(
                tenant,
                email,
                [role],
                display_name=f"{slug}-{key}",
                department=department,
                password=DEMO_PASSWORD,
            )
            token = issue_token(
                staff[key].identity_id, slug, secret=settings.secret_key, ttl_seconds=TOKEN_TTL
            )
            users[key] = {"email": email, "password": DEMO_PASSWORD, "token": token.token}
        added = await _seed_customers(
            tenant,
            [staff["sales"], staff["sales2"], staff["manager"]],
            settings.demo_customers_per_tenant,
        )
        profiled = await seed_profiles(
            tenant,
            [
                uuid.uuid5(_NAMESPACE, f"{slug}:{index}")
                for index in range(settings.demo_customers_per_tenant)
            ],
        )
        rated = await rate_all_customers(tenant, "manual")
        progress(
            f"{slug}: {added} customers added ({profiled} profiles, {rated} rated),"
            f" staff {', '.join(users)}"
        )
        app_key = await _app_key(tenant)
        await _share_with_partner(tenant, staff)
        tenants[slug] = {
            "name": tenant.name,
            "graphql_url": f"{base_url}/t/{slug}/graphql",
            "users": users,
            "apps": {DEMO_APP: {"key": app_key, "scopes": ["customers:read"]}},
        }
    return {"tenants": tenants}


def write_credentials(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
