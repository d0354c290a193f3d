"""The customer-archive story end to end, as real roles do it through the HTTP API.

One test walks the sentence that closes the archive issue: record a full enterprise
profile with contacts, communications, a contract with a scan and financial data; be
stopped from entering it twice; see the rating and why; change the credit rating, have a
manager approve it and see the history; import a spreadsheet with two bad rows and read
the error report; export a masked list. docs/archive-walkthrough.md tells the same story
with the same GraphQL documents (the constants below).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from dangan.devstack import Endpoints
from dangan.services.identifiers import make_mobile, make_uscc
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api, Response
from tests.support.archive import csv_file, forget_jobs, run_jobs
from tests.support.cleanup import remove_classification_values, remove_customers
from tests.support.world import TenantWorld, World

PREFIX = "档案故事-"  # every customer the story creates (or tries to import) is named so
TODAY = date.today()
ADDED: list[str] = []  # dictionary codes the story adds; removed at the end
MASKED_USCC = re.compile(r"^[0-9A-Z]{8}\*{6}[0-9A-Z]{4}$")

ADD_INDUSTRY = """mutation($code: String!, $label: String!) {
  addClassificationValue(dimension: INDUSTRY, code: $code, label: $label) { code label } }"""
INDUSTRIES = "{ classificationValues(dimension: INDUSTRY) { code label } }"
CREATE = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    id version name uscc phone industry industryLabel legalRepresentative
    registeredCapital potential competitionRisk creditRating } }"""
ADD_CONTACT = """mutation($c: ID!, $i: ContactPersonInput!) {
  addContactPerson(customerId: $c, input: $i) { id name phone isPrimary } }"""
ADD_COMMUNICATION = """mutation($c: ID!, $i: CommunicationInput!) {
  addCommunication(customerId: $c, input: $i) { id channel summary staff { displayName } } }"""
ADD_CONTRACT = """mutation($c: ID!, $i: ContractInput!) {
  addContract(customerId: $c, input: $i) { id number status amount } }"""
REQUEST_UPLOAD = """mutation($c: ID!, $i: AttachmentUploadInput!) {
  requestAttachmentUpload(customerId: $c, input: $i) {
    uploadUrl expiresAt attachment { id status } } }"""
COMPLETE_UPLOAD = """mutation($id: ID!) {
  completeAttachmentUpload(id: $id) { id status filename sizeBytes downloadable } }"""
DOWNLOAD = "query($id: ID!) { attachmentDownloadUrl(id: $id) { url expiresAt } }"
ADD_PURCHASE = """mutation($c: ID!, $i: PurchaseInput!) {
  addPurchase(customerId: $c, input: $i) { id amount cost } }"""
ADD_PAYMENT = """mutation($c: ID!, $i: PaymentRecordInput!) {
  addPaymentRecord(customerId: $c, input: $i) { id dueOn amount paidAmount } }"""
PROFILE = """query($id: ID!) { customer(id: $id) {
  name uscc creditRating overdueAmount
  contactPersons { name phone title isPrimary }
  communications { channel summary nextStep }
  contracts { number title status amount }
  attachments { category filename contractId downloadable }
  paymentRecords { dueOn amount paidAmount }
} }"""
DUPLICATE = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input, allowPossibleDuplicate: true) { id } }"""
RATING = """query($id: ID!) { customer(id: $id) {
  ratingGrade rating { score grade criteria { criterion weight score explanation } } } }"""
UPDATE = """mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!, $reason: String) {
  updateCustomer(id: $id, version: $version, input: $input, reason: $reason) {
    version creditRating pendingChanges { id status fields { field oldValue newValue } } } }"""
APPROVE = """mutation($id: ID!, $comment: String) {
  approveChange(id: $id, comment: $comment) { id status decidedBy { name } } }"""
HISTORY = """query($id: ID!) { customerHistory(id: $id) { nodes {
  action status reason actor { name } decidedBy { name } decisionComment
  fields { field oldValue newValue } } } }"""
START_IMPORT = """mutation($input: StartCustomerImportInput!) {
  startCustomerImport(input: $input) { id status } }"""
START_EXPORT = """mutation($input: StartCustomerExportInput!) {
  startCustomerExport(input: $input) { id status } }"""
JOB = """query($id: ID!) { archiveJob(id: $id) {
  id kind status total done result downloadUrl } }"""


class Story:
    """The beta tenant as each role calls it."""

    def __init__(self, api: Api, tenant: TenantWorld) -> None:
        self.api, self.tenant = api, tenant
        self.jobs: list[str] = []

    async def call(self, who: str, query: str, **variables: Any) -> Response:
        return await self.api.post(self.tenant.slug, self.tenant.tokens[who], query, variables)

    async def ok(self, who: str, query: str, **variables: Any) -> Any:
        return (await self.call(who, query, **variables)).ok()


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        reply = await client.get(url)
    assert reply.status_code == 200, reply.text
    return reply.content


def changes_by_field(change: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {f["field"]: (f["oldValue"], f["newValue"]) for f in change["fields"]}


@pytest.fixture
async def story(
    api: Api, world: World, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[Story]:
    """The story in beta; afterwards beta is as it was (customers, dictionary, jobs, files)."""
    told = Story(api, world["beta"])
    yield told
    objects = ObjectStore(s3_client(endpoints), settings.s3_bucket)

    async def forget_rows() -> list[str]:
        connection = raw_connection()
        keys = await connection.fetch(
            "SELECT a.object_key FROM attachment a JOIN customer c ON c.id = a.customer_id"
            " WHERE c.name LIKE $1 AND a.object_key IS NOT NULL"
            " UNION ALL SELECT object_key FROM archive_job WHERE id = ANY($2::uuid[])"
            " UNION ALL SELECT result->>'errorReportKey' FROM archive_job"
            " WHERE id = ANY($2::uuid[])",
            f"{PREFIX}%",
            told.jobs,
        )
        await connection.execute("DELETE FROM archive_job WHERE id = ANY($1::uuid[])", told.jobs)
        return [row[0] for row in keys if row[0]]

    for key in await run_in_tenant(told.tenant.ref, forget_rows):
        await objects.remove(key)
    await remove_customers(world, PREFIX)
    await remove_classification_values(world, ADDED)
    await forget_jobs(settings, endpoints)


def enterprise(industry: str) -> dict[str, Any]:
    rng = random.Random()
    return {
        "kind": "ENTERPRISE",
        "name": f"{PREFIX}杭州储能科技有限公司",
        "uscc": make_uscc(rng),
        "phone": make_mobile(rng),
        "region": "浙江省",
        "city": "杭州市",
        "industry": industry,
        "legalRepresentative": "周建国",
        "registeredCapital": "5000000",
        "potential": 4,
        "competitionRisk": "MEDIUM",
    }


async def record_profile(story: Story) -> tuple[dict[str, Any], str, str]:
    """Admin adds an industry; sales records the enterprise, its contacts, communications,
    a contract and the contract's scan. Returns (values sent, customer id, contract id)."""
    code = f"STORAGE_{uuid.uuid4().hex[:6].upper()}"
    ADDED.append(code)
    await story.ok("admin", ADD_INDUSTRY, code=code, label="储能设备")
    listed = (await story.ok("sales", INDUSTRIES))["classificationValues"]
    assert {"code": code, "label": "储能设备"} in listed

    values = enterprise(code)
    created = (await story.ok("sales", CREATE, input=values))["createCustomer"]
    assert created["industryLabel"] == "储能设备" and created["registeredCapital"] == "5000000.00"
    assert MASKED_USCC.match(created["uscc"]), "sales sees identity masked"
    assert created["creditRating"] is None
    cid = created["id"]

    wang = await story.ok(
        "sales",
        ADD_CONTACT,
        c=cid,
        i={"name": "王芳", "title": "采购经理", "phone": "13900001111", "isPrimary": True},
    )
    await story.ok("sales", ADD_CONTACT, c=cid, i={"name": "李强", "title": "财务总监"})
    await story.ok(
        "sales",
        ADD_COMMUNICATION,
        c=cid,
        i={
            "channel": "VISIT",
            "occurredAt": "2025-03-01T10:00:00+08:00",
            "summary": "上门拜访，了解储能柜采购计划",
            "contactPersonId": wang["addContactPerson"]["id"],
        },
    )
    await story.ok(
        "sales",
        ADD_COMMUNICATION,
        c=cid,
        i={
            "channel": "CALL",
            "occurredAt": "2025-03-05T15:30:00+08:00",
            "summary": "电话确认报价",
            "nextStep": "寄送合同",
            "nextStepDue": "2025-03-10",
        },
    )
    contract = (
        await story.ok(
            "sales",
            ADD_CONTRACT,
            c=cid,
            i={
                "number": f"HT-{cid[:8]}",
                "title": "储能柜采购合同",
                "parties": ["杭州储能科技有限公司", "Beta Ltd"],
                "signedOn": "2025-03-12",
                "status": "ACTIVE",
            },
        )
    )["addContract"]
    assert contract["status"] == "ACTIVE"

    scan = b"%PDF-1.4\n" + os.urandom(4000)
    ticket = (
        await story.ok(
            "sales",
            REQUEST_UPLOAD,
            c=cid,
            i={
                "category": "CONTRACT_SCAN",
                "filename": "储能柜采购合同.pdf",
                "contentType": "application/pdf",
                "sizeBytes": len(scan),
                "sha256": hashlib.sha256(scan).hexdigest(),
                "contractId": contract["id"],
            },
        )
    )["requestAttachmentUpload"]
    assert ticket["attachment"]["status"] == "PENDING"
    async with httpx.AsyncClient() as client:
        put = await client.put(
            ticket["uploadUrl"], content=scan, headers={"Content-Type": "application/pdf"}
        )
    assert put.status_code == 200, put.text
    stored = (await story.ok("sales", COMPLETE_UPLOAD, id=ticket["attachment"]["id"]))[
        "completeAttachmentUpload"
    ]
    assert stored["status"] == "STORED" and stored["downloadable"] is True
    link = (await story.ok("sales", DOWNLOAD, id=stored["id"]))["attachmentDownloadUrl"]
    assert await fetch(link["url"]) == scan
    return values, cid, contract["id"]


async def add_financial_data(story: Story, cid: str, contract_id: str) -> None:
    """The manager records a purchase and two payments (one overdue); sales sees the
    profile without any of the financial values."""
    await story.ok(
        "manager",
        ADD_PURCHASE,
        c=cid,
        i={
            "orderNo": f"PO-{cid[:8]}",
            "product": "储能柜",
            "quantity": "2",
            "amount": "300000",
            "cost": "210000",
            "purchasedOn": (TODAY - timedelta(days=20)).isoformat(),
        },
    )
    for due, paid in ((TODAY - timedelta(days=15), "100000"), (TODAY + timedelta(days=30), "0")):
        await story.ok(
            "manager",
            ADD_PAYMENT,
            c=cid,
            i={
                "dueOn": due.isoformat(),
                "amount": "150000",
                "paidAmount": paid,
                "contractId": contract_id,
            },
        )
    managed = (await story.ok("manager", PROFILE, id=cid))["customer"]
    assert managed["overdueAmount"] == "50000.00"
    assert sorted(p["amount"] for p in managed["paymentRecords"]) == ["150000.00"] * 2
    assert MASKED_USCC.match(managed["uscc"]), "the manager sees identity masked too"

    seen = await story.call("sales", PROFILE, id=cid)
    profile = seen.ok()["customer"]
    assert profile["paymentRecords"] is None and profile["overdueAmount"] is None
    assert profile["creditRating"] is None
    assert set(seen.body["extensions"]["redacted"]) == {
        "customer.creditRating",
        "customer.overdueAmount",
        "customer.paymentRecords",
        "customer.contracts.0.amount",
    }
    assert [p["name"] for p in profile["contactPersons"]] == ["李强", "王芳"]
    assert [c["channel"] for c in profile["communications"]] == ["CALL", "VISIT"]
    assert profile["contracts"][0]["title"] == "储能柜采购合同"
    [scan] = profile["attachments"]
    assert scan["category"] == "CONTRACT_SCAN" and scan["contractId"] == contract_id


async def refuse_the_duplicate(story: Story, values: dict[str, Any], cid: str) -> None:
    """The same enterprise again (another phone): refused for good, naming the existing
    one by its name (sales see the USCC only masked, so the refusal doesn't confirm it)."""
    again = {**values, "phone": make_mobile(random.Random())}
    reply = await story.call("sales", DUPLICATE, input=again)
    assert reply.codes == ["CONFLICT"], reply.body
    extensions = reply.errors[0]["extensions"]
    assert extensions["field"] == "name" and extensions["overridable"] is False
    [candidate] = extensions["duplicates"]
    assert candidate["id"] == cid and candidate["matchedOn"] == ["name"]
    assert candidate["name"] == values["name"]
    assert values["uscc"] not in reply.text, "sales sees the USCC masked, even here"


async def read_the_rating(story: Story, cid: str) -> None:
    """Sales and the manager see the rating and why; only the manager sees the profit."""
    by: dict[str, dict[str, str]] = {}
    for who in ("sales", "manager"):
        customer = (await story.ok(who, RATING, id=cid))["customer"]
        rating = customer["rating"]
        assert rating["grade"] == customer["ratingGrade"] and 0 <= rating["score"] <= 100
        by[who] = {c["criterion"]: c["explanation"] for c in rating["criteria"]}
    assert by["sales"]["POTENTIAL"] == "staff assessment 4/5; no open opportunities"
    assert by["sales"]["COMPETITION"] == "competition risk medium"
    assert by["sales"]["LOYALTY"].startswith("1 order in the last 12 months")
    assert "(amount withheld)" in by["sales"]["PROFIT"], "sales may not see costs"
    assert by["manager"]["PROFIT"].startswith("profit ¥90,000 in the last 12 months")
    audited = await story.call("auditor", RATING, id=cid)
    assert audited.ok()["customer"]["rating"] is None
    assert "customer.rating" in audited.body["extensions"]["redacted"]
    assert (await story.call("sales2", RATING, id=cid)).codes == ["NOT_FOUND"]


async def change_the_credit_rating(story: Story, cid: str, uscc: str) -> None:
    """The admin changes the credit rating: pending, the old value stands until the
    manager approves; the history says who did what, masked as each viewer sees it."""
    version = (
        await story.ok("admin", "query($id: ID!) { customer(id: $id) { version } }", id=cid)
    )["customer"]["version"]
    proposed = (
        await story.ok(
            "admin",
            UPDATE,
            id=cid,
            version=version,
            input={"creditRating": "AA"},
            reason="年报显示偿债能力提升",
        )
    )["updateCustomer"]
    assert proposed["creditRating"] is None and proposed["version"] == version
    [pending] = proposed["pendingChanges"]
    assert pending["status"] == "PENDING"
    assert changes_by_field(pending) == {"creditRating": (None, "AA")}
    seen_by_sales = (await story.ok("sales", PROFILE, id=cid))["customer"]
    assert seen_by_sales["creditRating"] is None
    assert (await story.call("admin", APPROVE, id=pending["id"])).codes == ["FORBIDDEN"]
    approved = (await story.ok("manager", APPROVE, id=pending["id"], comment="同意"))[
        "approveChange"
    ]
    assert approved["status"] == "APPROVED"
    after = (await story.ok("manager", PROFILE, id=cid))["customer"]
    assert after["creditRating"] == "AA"

    for who in ("admin", "manager", "sales"):
        nodes = (await story.ok(who, HISTORY, id=cid))["customerHistory"]["nodes"]
        revised = [c for c in nodes if c["reason"] == "年报显示偿债能力提升"]
        if who == "sales":
            # Not even "the credit rating changed that day": the change is left out.
            assert revised == [], "sales may not even know the credit rating changed"
            named = {f["field"] for c in nodes for f in c["fields"]}
            assert not {"creditRating", "paidAmount", "cost"} & named, named
        else:
            [change] = revised
            assert change["status"] == "APPROVED" and change["actor"]["name"] == "beta-admin"
            assert change["decidedBy"]["name"] == "beta-manager"
            assert change["decisionComment"] == "同意"
            assert changes_by_field(change) == {"creditRating": (None, "AA")}
        create = nodes[-1]
        assert create["action"] == "create" and create["actor"]["name"] == "beta-sales"
        created_uscc = changes_by_field(create)["uscc"][1]
        assert created_uscc == uscc if who == "admin" else MASKED_USCC.match(created_uscc)


async def finish(story: Story, settings: Settings, endpoints: Endpoints, job_id: str) -> Any:
    """Run the worker (as `make run` does in the background) and read the job as its sender."""
    story.jobs.append(job_id)
    await run_jobs(settings, endpoints)
    done = (await story.ok("sales", JOB, id=job_id))["archiveJob"]
    assert done["status"] == "SUCCEEDED", done
    return done


async def import_with_two_bad_rows(story: Story, settings: Settings, endpoints: Endpoints) -> None:
    """Sales checks a spreadsheet (VALIDATE_ONLY) and reads what is wrong, line by line."""
    rng = random.Random()
    rows = [
        ["客户类型", "客户名称", "统一社会信用代码", "phone", "region"],
        ["ENTERPRISE", f"{PREFIX}宁波电池有限公司", make_uscc(rng), make_mobile(rng), "浙江省"],
        ["ENTERPRISE", f"{PREFIX}温州光伏有限公司", "", "12345", "浙江省"],
        ["个人客户", f"{PREFIX}赵敏", "", make_mobile(rng), "浙江省"],
        ["INDIVIDUAL", f"{PREFIX}钱进", "", "", "火星"],
    ]
    content = csv_file(rows)
    started = (
        await story.ok(
            "sales",
            START_IMPORT,
            input={"format": "CSV", "filename": "客户.csv", "contentBase64": content},
        )
    )["startCustomerImport"]
    assert started["status"] == "QUEUED"
    done = await finish(story, settings, endpoints, started["id"])
    result = done["result"]
    assert (result["rows"], result["valid"], result["invalid"], result["imported"]) == (4, 2, 2, 0)
    assert [(e["line"], e["field"]) for e in result["errorList"]] == [(3, "phone"), (5, "region")]
    report = list(csv.reader(io.StringIO((await fetch(done["downloadUrl"])).decode("utf-8-sig"))))
    assert report[0] == ["line", "field", "message", "candidates"]
    assert [(line, field) for line, field, _, _ in report[1:]] == [("3", "phone"), ("5", "region")]
    assert [e["message"] for e in result["errorList"]] == [r[2] for r in report[1:]]
    lookup = {"where": [{"field": "name", "op": "CONTAINS", "value": "宁波电池"}]}
    found = await story.ok(
        "admin",
        "query($where: [CustomerCondition!]) { customers(where: $where) { totalCount } }",
        **lookup,
    )
    assert found["customers"]["totalCount"] == 0, "VALIDATE_ONLY writes nothing"


async def export_a_masked_list(
    story: Story, settings: Settings, endpoints: Endpoints, cid: str, values: dict[str, Any]
) -> None:
    """Sales exports their customers: the file is masked as sales sees them, watermarked."""
    started = (await story.ok("sales", START_EXPORT, input={"format": "CSV"}))[
        "startCustomerExport"
    ]
    assert started["status"] == "QUEUED"
    done = await finish(story, settings, endpoints, started["id"])
    lines = list(csv.reader(io.StringIO((await fetch(done["downloadUrl"])).decode("utf-8-sig"))))
    industry = values["industry"]
    mark, header, rows = lines[0][0], lines[1], lines[2:]
    assert mark.startswith("CONFIDENTIAL") and "beta-sales <sales@beta.test>" in mark
    assert f"rows: {len(rows)}" in mark and done["result"]["rows"] == len(rows)
    for hidden in ("creditRating", "paymentCapacity", "annualRevenue"):
        assert hidden not in header
    records = {r["id"]: r for r in (dict(zip(header, row, strict=True)) for row in rows)}
    sales = story.tenant.people["sales"].identity_id
    mine = {str(c["id"]) for c in story.tenant.customers if c["owner_id"] == sales}
    assert set(records) == mine | {cid}
    ours = records[cid]
    assert ours["name"] == f"{PREFIX}杭州储能科技有限公司"
    assert (ours["industry"], ours["legalRepresentative"], ours["potential"]) == (
        industry,
        "周建国",
        "4",
    )
    assert MASKED_USCC.match(ours["uscc"]) and values["uscc"] not in str(lines)


async def test_the_customer_archive_story(
    story: Story, settings: Settings, endpoints: Endpoints
) -> None:
    values, cid, contract_id = await record_profile(story)
    await add_financial_data(story, cid, contract_id)
    await refuse_the_duplicate(story, values, cid)
    await read_the_rating(story, cid)
    await change_the_credit_rating(story, cid, values["uscc"])
    await import_with_two_bad_rows(story, settings, endpoints)
    await export_a_masked_list(story, settings, endpoints, cid, values)
