"""Three tenants with staff of every role, two partner apps and a few customers each.

Every test that touches data gets this world, so a leak across tenants, roles or apps
shows up wherever it happens.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from dangan.demo.seed import DEMO_STAFF
from dangan.models.archive import CUSTOMER_FIELDS
from dangan.services.api_keys import create_app
from dangan.services.callers import Caller
from dangan.services.customers import create_customer, get_customer_for_caller
from dangan.services.identifiers import make_id_number, make_mobile, make_uscc
from dangan.services.people import Person, caller_for, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant

TENANTS = ("alpha", "beta", "gamma")
ALL_COLUMNS = list(CUSTOMER_FIELDS)
CUSTOMERS_PER_TENANT = 6


@dataclass
class TenantWorld:
    ref: TenantRef
    people: dict[str, Person] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    customers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.ref.slug

    def caller(self, who: str) -> Caller:
        return caller_for(self.ref, self.people[who])


@dataclass
class World:
    tenants: dict[str, TenantWorld]

    def __getitem__(self, slug: str) -> TenantWorld:
        return self.tenants[slug]


def _customer_values(rng: random.Random, index: int, slug: str) -> dict[str, Any]:
    if index % 2 == 0:
        return {
            "kind": "INDIVIDUAL",
            "name": f"{slug}客户{index}",
            "phone": make_mobile(rng),
            "email": f"c{index}@{slug}.example.com",
            "id_number": make_id_number(rng, region="33"),
            "region": "浙江省",
            "tier": "KEY" if index == 0 else "ORDINARY",
        }
    return {
        "kind": "ENTERPRISE",
        "name": f"{slug}科技{index}有限公司",
        "phone": make_mobile(rng),
        "uscc": make_uscc(rng),
        "region": "北京市",
        "tier": "POTENTIAL",
    }


async def build_world(settings: Settings) -> World:
    rng = random.Random("dangan-tests")
    tenants: dict[str, TenantWorld] = {}
    for slug in TENANTS:
        tw = TenantWorld(ref=await create_tenant(slug, f"{slug.title()} Ltd"))
        for who, (role, department) in DEMO_STAFF.items():
            person = await create_user(
                tw.ref,
                f"{who}@{slug}.test",
                [role],
                display_name=f"{slug}-{who}",
                department=department,
                password=f"{slug}-{who}-password",
            )
            tw.people[who] = person
            tw.tokens[who] = issue_token(
                person.identity_id, slug, secret=settings.secret_key, ttl_seconds=3600
            ).token
        tw.keys["reader"] = (await create_app(tw.ref, "reader", ["customers:read"])).key
        tw.keys["writer"] = (await create_app(tw.ref, "writer", ["customers:write"])).key
        owners = ["sales", "sales2", "manager"]
        for index in range(CUSTOMERS_PER_TENANT):
            values = _customer_values(rng, index, slug)
            values["owner_id"] = tw.people[owners[index % 3]].identity_id

            async def make(
                values: dict[str, Any] = values, admin: Caller = tw.caller("admin")
            ) -> Any:
                # The names are look-alikes on purpose (alpha客户0, alpha客户2, …).
                new_id = await create_customer(admin, values, allow_possible_duplicate=True)
                return await get_customer_for_caller(admin, new_id, ALL_COLUMNS)

            row = await run_in_tenant(tw.ref, make)
            tw.customers.append(dict(row))
        tenants[slug] = tw
    return World(tenants)


def missing_id() -> str:
    return str(uuid.uuid4())
