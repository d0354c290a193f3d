"""Helpers for compliance report tests: a tenant of their own with staff of every role,
the database's clock, the report through the API, and its files read back as tables."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import httpx

from dangan.demo.seed import DEMO_STAFF
from dangan.services.api_keys import create_app
from dangan.services.customers import create_customer
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.tenants import drop_tenant
from tests.support.world import TenantWorld

COUNTS = """actorKind role actorId actorName events reads customerRowsRead customersRead
  changesApplied changesSubmitted changesApproved changesRejected changesWithdrawn
  exportsRequested exportsApproved exportsRejected sharesRequested sharesApproved
  sharesRejected sharesRevoked reveals refused forbidden unauthenticated errors"""
REPORT = f"""query($from: DateTime!, $to: DateTime!) {{ complianceReport(from: $from, to: $to) {{
  tenant tenantName periodFrom periodTo generatedBy
  activity {{ byRole {{ ...C }} byActor {{ ...C }} total {{ ...C }} }}
  changes {{ recorded applied submitted stillPending approved rejected withdrawn pendingNow }}
  exports {{ requested neededApproval awaitingApproval approved rejected completed failed
             rowsExported }}
  shares {{ requested approved rejected revoked expired approvedForPeople
            approvedForDepartments approvedForApps customersShared activeNow }}
  reveals {{ byField {{ fieldClass field reveals customers actors }} total }}
  policies {{ activeVersion changes {{ version status proposedById proposedBy activatedBy }} }}
  backups {{ catalogued note made scheduled storedBytes failedRuns lastFailure verified
             verifyFailed drilled drillFailed restores lastGoodId lastGoodAt lastGoodAgeHours }}
  auditChain {{ ok eventsVerified headSeq brokenSeq problem message checkpoints }}
}} }}
fragment C on ComplianceActivityCounts {{ {COUNTS} }}"""
EXPORT_REPORT = """mutation($from: DateTime!, $to: DateTime!, $format: ComplianceReportFormat!) {
  exportComplianceReport(from: $from, to: $to, format: $format) {
    format filename url expiresAt size } }"""


async def staffed_tenant(slug: str, settings: Settings) -> TenantWorld:
    """A fresh tenant with the demo's staff, two partner apps and three customers (two
    individuals of ``sales``, one of ``sales2``)."""
    await drop_tenant(slug)
    tenant = TenantWorld(ref=await create_tenant(slug, f"{slug.title()} 合规有限公司"))
    for who, (role, department) in DEMO_STAFF.items():
        person = await create_user(
            tenant.ref,
            f"{who}@{slug.replace('_', '-')}.test",
            [role],
            display_name=f"{slug}-{who}",
            department=department,
        )
        tenant.people[who] = person
        tenant.tokens[who] = issue_token(
            person.identity_id, slug, secret=settings.secret_key, ttl_seconds=3600
        ).token
    tenant.keys["reader"] = (await create_app(tenant.ref, "reader", ["customers:read"])).key
    tenant.keys["writer"] = (await create_app(tenant.ref, "writer", ["customers:write"])).key
    rng = random.Random(slug)
    for n, owner in enumerate(("sales", "sales", "sales2"), start=1):
        values = {
            "kind": "INDIVIDUAL",
            "name": f"合规客户{n}",
            "phone": make_mobile(rng),
            "id_number": make_id_number(rng, region="33"),
            "owner_id": tenant.people[owner].identity_id,
        }

        async def make(values: dict[str, Any] = values) -> str:
            return await create_customer(
                tenant.caller("admin"), values, allow_possible_duplicate=True
            )

        customer_id = await run_in_tenant(tenant.ref, make)
        tenant.customers.append({"id": customer_id, **values})
    return tenant


async def clock(tenant: TenantRef) -> datetime:
    """The database's clock (the one audit events are stamped with)."""
    moment: datetime = await run_in_tenant(
        tenant, lambda: raw_connection().fetchval("SELECT clock_timestamp()")
    )
    return moment


async def report(
    api: Api, tenant: TenantWorld, who: str, start: datetime, end: datetime
) -> Response:
    period = {"from": start.isoformat(), "to": end.isoformat()}
    credential = tenant.keys[who] if who in tenant.keys else tenant.tokens[who]
    return await api.post(tenant.slug, credential, REPORT, period)


async def report_file(
    api: Api, tenant: TenantWorld, start: datetime, end: datetime, format: str
) -> tuple[dict[str, Any], bytes]:
    """The auditor's report file: what the API said about it, and its content."""
    period = {"from": start.isoformat(), "to": end.isoformat(), "format": format}
    saved = (await api.post(tenant.slug, tenant.tokens["auditor"], EXPORT_REPORT, period)).ok()
    described = saved["exportComplianceReport"]
    async with httpx.AsyncClient() as client:
        reply = await client.get(described["url"])
    assert reply.status_code == 200, reply.text
    return described, reply.content


def csv_tables(data: bytes) -> dict[str, list[list[str]]]:
    """``[key] title`` → the rows under the table's header."""
    tables: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    header_seen = False
    for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
        if not row:
            current = None
        elif row[0].startswith("[") and "]" in row[0] and current is None:
            current = tables.setdefault(row[0][1 : row[0].index("]")], [])
            header_seen = False
        elif current is not None and not header_seen:
            header_seen = len(row) > 1  # a one-cell line under the title is its note
        elif current is not None:
            current.append(row)
    return tables


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(str(dict(attrs)["id"]), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            if self._row:  # header rows hold th cells only
                self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def html_tables(data: bytes) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(data.decode("utf-8"))
    return parser.tables
