"""Building a retention scenario: customers, records and shares of a scratch tenant,
aged in SQL (a test can't wait three years), and runs of the purge."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dangan.audit.actions import ActionLog
from dangan.demo.seed import DEMO_STAFF
from dangan.services.api_keys import create_app
from dangan.services.attachments.uploads import object_key, staging_key
from dangan.services.callers import Caller
from dangan.services.customers import create_customer
from dangan.services.people import Person, caller_for, create_user
from dangan.services.retention import Purger, RetentionReport, run_retention
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

YEAR = timedelta(days=366)


@dataclass
class Scratch:
    ref: TenantRef
    settings: Settings
    people: dict[str, Person] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    app_key: str = ""  # a partner app with customers:read and customers:write

    @property
    def slug(self) -> str:
        return self.ref.slug

    def caller(self, who: str) -> Caller:
        return caller_for(self.ref, self.people[who])

    def id_of(self, who: str) -> int:
        return self.people[who].identity_id

    async def sql(self, query: str, *args: Any) -> list[Any]:
        """Run SQL in the tenant (as its role), returning the rows."""
        return await run_in_tenant(self.ref, lambda: raw_connection().fetch(query, *args))

    async def value(self, query: str, *args: Any) -> Any:
        return await run_in_tenant(self.ref, lambda: raw_connection().fetchval(query, *args))

    async def customer(
        self,
        name: str,
        *,
        owner: str = "sales",
        kind: str = "INDIVIDUAL",
        tier: str = "ORDINARY",
        status: str | None = None,
        age: timedelta = timedelta(0),
    ) -> uuid.UUID:
        """A customer created ``age`` ago (its change records too); ``status`` set then."""
        values = {"kind": kind, "name": name, "tier": tier, "owner_id": self.id_of(owner)}

        async def make() -> str:
            return await create_customer(
                self.caller("admin"), values, allow_possible_duplicate=True
            )

        uid = uuid.UUID(await run_in_tenant(self.ref, make))
        if status is not None:
            await self.sql(
                "UPDATE customer SET status = $2, status_changed_at = now() WHERE id = $1",
                uid,
                status,
            )
        if age:
            await self.age_customer(uid, age)
        return uid

    async def age_customer(self, uid: uuid.UUID, age: timedelta) -> None:
        """Move every date of a customer and of its change records ``age`` back."""
        await self.sql(
            "UPDATE customer SET created_at = created_at - $2::interval,"
            " updated_at = updated_at - $2::interval,"
            " status_changed_at = status_changed_at - $2::interval WHERE id = $1",
            uid,
            age,
        )
        await self.sql(
            "UPDATE customer_change SET at = at - $2::interval WHERE customer_id = $1", uid, age
        )

    async def communication(self, customer: uuid.UUID, occurred_at: datetime) -> uuid.UUID:
        """A communication (with its change record, as the API writes one)."""
        comm: uuid.UUID = await self.value(
            "INSERT INTO communication (customer_id, channel, occurred_at, summary, created_at)"
            " VALUES ($1, 'CALL', $2, '谈续约', $2) RETURNING id",
            customer,
            occurred_at,
        )
        await self.sql(
            "INSERT INTO customer_change (customer_id, action, record_type, record_id,"
            " actor_kind, actor_id, at) VALUES ($1, 'add', 'communication', $2, 'user', $3, $4)",
            customer,
            comm,
            self.id_of("sales"),
            occurred_at,
        )
        return comm

    async def share(self, customers: list[uuid.UUID], ended: datetime) -> uuid.UUID:
        """An approved share request of ``customers`` that ended at ``ended``."""
        share: uuid.UUID = await self.value(
            "INSERT INTO share_request (grantee_user_id, classes, level, purpose, valid_until,"
            " status, requested_by, requested_at) VALUES ($1, '{basic}', 'full', '季度复核',"
            " $2, 'expired', $3, $2::timestamptz - interval '30 days') RETURNING id",
            self.id_of("sales2"),
            ended,
            self.id_of("sales"),
        )
        await self.sql(
            "INSERT INTO share_request_customer (request_id, customer_id)"
            " SELECT $1, unnest($2::uuid[])",
            share,
            customers,
        )
        await self.sql(
            "INSERT INTO share_event (request_id, event, actor_kind, actor_id, reason, at)"
            " VALUES ($1, 'requested', 'user', $2, '季度复核', $3)",
            share,
            self.id_of("sales"),
            ended - timedelta(days=30),
        )
        return share

    async def exists(self, table: str, uid: uuid.UUID) -> bool:
        return bool(await self.value(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)", uid))

    async def candidates(self, status: str = "marked") -> list[dict[str, Any]]:
        rows = await self.sql(
            "SELECT * FROM retention_candidate WHERE status = $1 ORDER BY id", status
        )
        return [dict(row) for row in rows]

    async def records(self) -> list[dict[str, Any]]:
        rows = await self.sql("SELECT * FROM destruction_record ORDER BY id")
        return [{**dict(row), "counts": orjson.loads(row["counts"])} for row in rows]

    async def events(self, action: str) -> list[dict[str, Any]]:
        rows = await self.sql(
            "SELECT seq, actor_kind, operation_type, variables, customers, outcome"
            " FROM audit_event WHERE $1 = ANY(actions) ORDER BY seq",
            action,
        )
        events = []
        for row in rows:
            event = {**dict(row), "variables": orjson.loads(row["variables"])}
            ids = row["customers"]
            event["customers"] = [uuid.UUID(bytes=ids[i : i + 16]) for i in range(0, len(ids), 16)]
            events.append(event)
        return events

    async def run(
        self,
        objects: ObjectStore,
        *,
        at: datetime | None = None,
        dry_run: bool = False,
    ) -> RetentionReport:
        """A retention run as the nightly job does it (``at``: its clock)."""
        key = self.settings.secret_key
        purger = Purger(key, ActionLog(key, "job"), "job")
        return await run_retention(self.ref, objects, purger, as_of=at, dry_run=dry_run)


async def make_scratch(slug: str, settings: Settings) -> Scratch:
    scratch = Scratch(ref=await create_tenant(slug, "Retention Scratch Ltd"), settings=settings)
    for who, (role, department) in DEMO_STAFF.items():
        person = await create_user(
            scratch.ref,
            f"{who}@{slug.replace('_', '-')}.test",
            [role],
            display_name=f"{slug}-{who}",
            department=department,
        )
        scratch.people[who] = person
        scratch.tokens[who] = issue_token(
            person.identity_id, slug, secret=settings.secret_key, ttl_seconds=3600
        ).token
    scratch.app_key = (
        await create_app(scratch.ref, "partner", ["customers:read", "customers:write"])
    ).key
    return scratch


def now() -> datetime:
    return datetime.now(UTC)


async def attach(scratch: Scratch, objects: ObjectStore, customer: uuid.UUID) -> str:
    """A stored attachment of ``customer``: its row and its file in S3 (plus a stale
    upload at its staging key); returns the object key."""
    attachment = uuid.uuid4()
    key = object_key(scratch.slug, customer, attachment)
    content = b"%PDF-1.4 contract scan"
    await objects.put_bytes(key, content, "application/pdf")
    await objects.put_bytes(staging_key(key), content, "application/pdf")
    await scratch.sql(
        "INSERT INTO attachment (id, customer_id, category, filename, content_type, size_bytes,"
        " sha256, object_key, status, stored_at) VALUES ($1, $2, 'CONTRACT_SCAN', '合同.pdf',"
        " 'application/pdf', $3, $4, $5, 'STORED', now())",
        attachment,
        customer,
        len(content),
        hashlib.sha256(content).hexdigest(),
        key,
    )
    return key
