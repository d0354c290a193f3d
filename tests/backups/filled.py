"""A tenant with something in most of its tables, written the way the product writes
them (people, apps, customers and their profiles, ratings, an approved share, audit
events) plus a few rows by hand where only a job or a request would write them."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dangan.audit.actions import record_action
from dangan.demo.profiles import seed_profiles
from dangan.demo.seed import DEMO_STAFF
from dangan.services.api_keys import create_app
from dangan.services.customers import create_customer
from dangan.services.identifiers import make_id_number, make_mobile, make_uscc
from dangan.services.people import Person, caller_for, create_user
from dangan.services.rating import rate_all_customers
from dangan.services.sharing import Grantee, decide_share, request_share
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

CUSTOMERS = 6


@dataclass
class Filled:
    ref: TenantRef
    people: dict[str, Person] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    customers: list[uuid.UUID] = field(default_factory=list)


def _values(rng: random.Random, index: int) -> dict[str, Any]:
    if index % 2:
        return {
            "kind": "ENTERPRISE",
            "name": f"还原科技{index}有限公司",
            "phone": make_mobile(rng),
            "uscc": make_uscc(rng),
            "remarks": "多行\n备注\t含制表符 \\ 与反斜杠",  # escapes in COPY's text format
        }
    return {
        "kind": "INDIVIDUAL",
        "name": f"还原客户{index}",
        "phone": make_mobile(rng),
        "id_number": make_id_number(rng, region="33"),
        "email": f"c{index}@restore.example.com",
    }


async def _by_hand(customer: uuid.UUID, staff: int) -> None:
    """Rows only a request or a job would write."""
    conn = raw_connection()
    await conn.execute(
        "INSERT INTO field_reveal (customer_id, field, actor_kind, actor_id, reason)"
        " VALUES ($1, 'phone', 'user', $2, 'called back about a complaint')",
        customer,
        staff,
    )
    await conn.execute(
        "INSERT INTO policy_version (files, comment, report, proposed_by)"
        " VALUES ('{}', 'a proposal', '{}', $1)",
        staff,
    )
    alert = await conn.fetchval(
        "INSERT INTO alert (rule, severity, actor_kind, actor_id, actor_name, actor_key,"
        " summary, last_seen_at, first_seq, last_seq, evidence) VALUES ('bulk_read', 'high',"
        " 'user', $1::int, 'sales', 'user:' || $1::int, 'read a lot', now(), 1, 2, '{}') RETURNING id",
        staff,
    )
    await conn.execute(
        "INSERT INTO alert_delivery (alert_id, attempt, url, outcome)"
        " VALUES ($1, 1, 'https://alarms.example.com/hook', 'delivered')",
        alert,
    )
    await conn.execute(
        "INSERT INTO alarm_known_address (actor_kind, actor_id, client_address,"
        " first_seen_at, last_seen_at, first_seq) VALUES ('user', $1, '10.1.2.3', now(), now(), 1)",
        staff,
    )
    await conn.execute(
        "INSERT INTO archive_job (kind, status, actor_kind, actor_id, parameters)"
        " VALUES ('EXPORT', 'SUCCEEDED', 'user', $1, '{}')",
        staff,
    )
    await conn.execute(
        "INSERT INTO archive_setting (key, value) VALUES ('export_approval_threshold', '50')"
    )
    await conn.execute(
        "INSERT INTO audit_access (customer_id, seq) SELECT $1, seq FROM audit_event", customer
    )


async def add_people(tenant: TenantRef, settings: Settings, into: Filled) -> None:
    for who, (role, department) in DEMO_STAFF.items():
        person = await create_user(
            tenant,
            f"{who}@{tenant.slug.replace('_', '-')}.test",
            [role],
            display_name=f"{tenant.slug}-{who}",
            department=department,
        )
        into.people[who] = person
        into.tokens[who] = issue_token(
            person.identity_id, tenant.slug, secret=settings.secret_key, ttl_seconds=3600
        ).token


async def fill(tenant: TenantRef, settings: Settings) -> Filled:
    filled = Filled(tenant)
    await add_people(tenant, settings, filled)
    app = await create_app(tenant, "reader", ["customers:read"])
    admin, sales = (caller_for(tenant, filled.people[who]) for who in ("admin", "sales"))
    rng = random.Random(f"restore:{tenant.slug}")
    for index in range(CUSTOMERS):
        values = {**_values(rng, index), "owner_id": filled.people["sales"].identity_id}

        async def make(values: dict[str, Any] = values) -> str:
            return await create_customer(admin, values, allow_possible_duplicate=True)

        filled.customers.append(uuid.UUID(str(await run_in_tenant(tenant, make))))
    await seed_profiles(tenant, filled.customers)
    await rate_all_customers(tenant, "manual")

    async def share_and_more() -> None:
        conn = raw_connection()
        await conn.execute(
            "UPDATE customer SET consents_to_sharing = true WHERE id = $1", filled.customers[0]
        )
        request = await request_share(
            sales,
            grantee=Grantee(kind="app", id=app.app_id),
            classes=["basic"],
            level="masked",
            purpose="restore test",
            until=datetime.now(UTC) + timedelta(days=30),
            customer_ids=[str(filled.customers[0])],
        )
        await decide_share(
            caller_for(tenant, filled.people["manager"]),
            str(request["id"]),
            approve=True,
            comment="fine",
        )
        for n in range(3):
            await record_action(settings.secret_key, "test.fill", origin="cli", details={"n": n})
        await _by_hand(filled.customers[0], filled.people["sales"].identity_id)

    await run_in_tenant(tenant, share_and_more)
    return filled
