"""Sample customers for the authorization tests (see conftest.py for their lifetime)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from dangan.services.customers import create_customer
from dangan.services.identifiers import make_id_number, make_mobile, make_uscc
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.world import TenantWorld

SAMPLE = "授权样本"  # the name of every customer these tests create starts with this
PURPOSE = "authz-tests"  # the purpose of every share request these tests make
OWNERS = ("sales", "sales2", "manager", "auditor")
RATINGS = ("AAA", "AA", "BBB", "BB", "CCC", "CC")  # single letters mask to themselves

SPECIMEN_ID_BIRTH = date(1990, 3, 7)
SPECIMEN: dict[str, Any] = {
    "kind": "INDIVIDUAL",
    "phone": "13812345678",
    "email": "zhang.san@example.com",
    "address": "浙江省杭州市西湖区文三路90号",
    "wechat": "zhangsan_1990",
    "region": "浙江省",
    "tier": "KEY",
    "birthday": SPECIMEN_ID_BIRTH,
    "gender": "MALE",
    "credit_rating": "AAA",
    "payment_capacity": Decimal("250000"),
    "annual_revenue": Decimal("5000000"),
    "remarks": "VIP：只在下午联系",
    "tags": ["样板"],
}


@dataclass
class Samples:
    ids: dict[str, list[str]]  # slug → ids of the sample customers
    specimen: dict[str, str]  # slug → id of the specimen (owned by sales)


def sample_values(rng: random.Random, slug: str, owner: str, kind: str, n: int) -> dict[str, Any]:
    individual = kind == "INDIVIDUAL"
    values: dict[str, Any] = {
        "kind": kind,
        "name": f"{SAMPLE}-{slug}-{owner}-{'个人' if individual else '企业'}",
        "phone": make_mobile(rng),
        "email": f"{owner}.{n}@{slug}-authz.example.com",
        "address": f"浙江省杭州市西湖区文三路{100 + n}号",
        "wechat": f"wx_{slug}_{owner}_{n}",
        "region": "浙江省",
        "tier": "KEY",
        "credit_rating": RATINGS[n % len(RATINGS)],
        "payment_capacity": Decimal(f"{(n + 1) * 170_003}.25"),
        "annual_revenue": Decimal(f"{(n + 1) * 2_345_677}.50"),
        "remarks": f"备注：{slug} {owner} 的秘密 {n}",
        "tags": ["授权测试"],
        "consents_to_sharing": not individual,
    }
    if individual:
        values["id_number"] = make_id_number(rng, region="33")
        values["birthday"] = date(1970 + n, 3 + n % 9, 7)
        values["gender"] = "FEMALE" if n % 4 else "MALE"
    else:
        values["uscc"] = make_uscc(rng)
    return values


async def make_customer(tenant: TenantWorld, values: dict[str, Any]) -> str:
    """Create a sample as the admin. Samples are look-alikes on purpose (their names
    differ only by owner and kind), so possible duplicates are allowed."""
    admin = tenant.caller("admin")
    return await run_in_tenant(
        tenant.ref, lambda: create_customer(admin, values, allow_possible_duplicate=True)
    )


async def remove_test_data(tenant: TenantWorld) -> None:
    async def remove() -> None:
        conn = raw_connection()
        await conn.execute("DELETE FROM share_request WHERE purpose = $1", PURPOSE)
        await conn.execute("DELETE FROM customer WHERE name LIKE $1", f"{SAMPLE}%")

    await run_in_tenant(tenant.ref, remove)
