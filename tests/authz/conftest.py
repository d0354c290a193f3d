"""Fixtures of the authorization tests.

``samples``: customers with every sensitive field filled, in each tenant of the session
world, owned in turn by sales, sales2, the manager and the auditor (the auditor's are in
审计部, outside the manager's department tree), one individual and one enterprise each,
plus a "specimen" with the values the masking examples speak of. All are created through
the services as the tenant's admin, and removed (with any share requests these tests
made) when the package is done, so the rest of the suite sees the world it expects.

``scratch``: a throwaway tenant with 1,000 customers, for what must not touch the world
(counting Oso calls, users without a department, odd values); dropped at the end.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from dangan.demo.seed import DEMO_STAFF
from dangan.services.callers import Caller
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.people import Person, caller_for, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.authz.samples import (
    OWNERS,
    SAMPLE,
    SPECIMEN,
    SPECIMEN_ID_BIRTH,
    Samples,
    make_customer,
    remove_test_data,
    sample_values,
)
from tests.support.tenants import drop_tenant
from tests.support.world import TENANTS, World

SCRATCH = "authz_bulk"
SCRATCH_CUSTOMERS = 1000


@pytest.fixture(scope="package")
async def samples(world: World) -> AsyncIterator[Samples]:
    rng = random.Random("authz-samples")
    ids: dict[str, list[str]] = {}
    specimen: dict[str, str] = {}
    for slug in TENANTS:
        tenant = world[slug]
        ids[slug] = []
        n = 0
        for owner in OWNERS:
            for kind in ("INDIVIDUAL", "ENTERPRISE"):
                values = sample_values(rng, slug, owner, kind, n)
                values["owner_id"] = tenant.people[owner].identity_id
                ids[slug].append(await make_customer(tenant, values))
                n += 1
        specimen_values = {
            **SPECIMEN,
            "name": f"{SAMPLE}-{slug}-样板",
            "id_number": make_id_number(rng, SPECIMEN_ID_BIRTH, "110101"),
            "owner_id": tenant.people["sales"].identity_id,
        }
        specimen[slug] = await make_customer(tenant, specimen_values)
        ids[slug].append(specimen[slug])
    yield Samples(ids, specimen)
    for slug in TENANTS:
        await remove_test_data(world[slug])


@dataclass
class Scratch:
    ref: TenantRef
    people: dict[str, Person]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.ref.slug

    def caller(self, who: str) -> Caller:
        return caller_for(self.ref, self.people[who])


@pytest.fixture(scope="package")
async def scratch(world: World, settings: Settings) -> AsyncIterator[Scratch]:
    """Staff as in the world plus ``nodept`` (a salesperson without a department), and
    1,000 customers owned by sales (一组), inserted in one executemany."""
    await drop_tenant(SCRATCH)  # left over by an interrupted run
    ref = await create_tenant(SCRATCH, "Authz Bulk Ltd")
    staff = {**DEMO_STAFF, "nodept": ("sales", None)}
    people: dict[str, Person] = {}
    tokens: dict[str, str] = {}
    for who, (role, department) in staff.items():
        people[who] = await create_user(
            ref, f"{who}@authz-bulk.test", [role], display_name=f"bulk-{who}", department=department
        )
        tokens[who] = issue_token(
            people[who].identity_id, SCRATCH, secret=settings.secret_key, ttl_seconds=3600
        ).token
    rng = random.Random("authz-bulk")
    owner = people["sales"]
    records = [
        (
            uuid.uuid4(),
            "INDIVIDUAL",
            f"批量客户{index:04d}",
            make_mobile(rng),
            f"bulk{index}@example.com",
            make_id_number(rng),
            f"浙江省杭州市滨江区网商路{index}号",
            f"wx_bulk_{index}",
            date(1960 + index % 40, 1 + index % 12, 1 + index % 28),
            "MALE" if index % 2 else "FEMALE",
            ("AAA", "AA", "BBB")[index % 3],
            Decimal(index * 1000),
            Decimal(index * 100_000),
            f"批量备注{index}",
            owner.identity_id,
            owner.department_id,
        )
        for index in range(SCRATCH_CUSTOMERS)
    ]

    async def insert() -> None:
        await raw_connection().executemany(
            "INSERT INTO customer (id, kind, name, phone, email, id_number, address, wechat,"
            " birthday, gender, credit_rating, payment_capacity, annual_revenue, remarks,"
            " owner_id, department_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            records,
        )

    await run_in_tenant(ref, insert)
    yield Scratch(ref, people, tokens)
    await drop_tenant(SCRATCH)
