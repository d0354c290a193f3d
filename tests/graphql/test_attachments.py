"""Attachments: a real upload to S3 through the presigned URL, checks on what arrived,
downloads only for callers who see the category's class in full, and deletion kept."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dangan.devstack import Endpoints
from dangan.services.attachments import files
from dangan.settings import Settings
from dangan.storage import ObjectStore, s3_client
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.support.api import Api
from tests.support.world import TenantWorld, World, missing_id

FIELDS = (
    "id customerId contractId category sensitivity filename contentType sizeBytes sha256"
    " status uploadedBy deletedBy deleteReason downloadable"
)
REQUEST = (
    "mutation($c: ID!, $i: AttachmentUploadInput!) { requestAttachmentUpload(customerId: $c,"
    f" input: $i) {{ uploadUrl expiresAt attachment {{ {FIELDS} }} }} }}"
)
COMPLETE = f"mutation($id: ID!) {{ completeAttachmentUpload(id: $id) {{ {FIELDS} }} }}"
DOWNLOAD = "query($id: ID!) { attachmentDownloadUrl(id: $id) { url expiresAt } }"
DELETE = (
    f"mutation($id: ID!, $r: String!) {{ deleteAttachment(id: $id, reason: $r) {{ {FIELDS} }} }}"
)
LISTING = f"query($id: ID!) {{ customer(id: $id) {{ id attachments {{ {FIELDS} }} }} }}"

PDF = b"%PDF-1.4\n" + os.urandom(3000)
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(2000)
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(500)


@pytest.fixture(scope="module")
async def objects(endpoints: Endpoints, settings: Settings) -> AsyncIterator[ObjectStore]:
    yield ObjectStore(s3_client(endpoints), settings.s3_bucket)


def _owned_by(t: TenantWorld, who: str, *, individual: bool = False) -> str:
    owner = t.people[who].identity_id
    return next(
        str(c["id"])
        for c in t.customers
        if c["owner_id"] == owner and (c["kind"] == "INDIVIDUAL" or not individual)
    )


def _input(content: bytes, **overrides: Any) -> dict[str, Any]:
    return {
        "category": "CONTRACT_SCAN",
        "filename": "合同 2026-001.pdf",
        "contentType": "application/pdf",
        "sizeBytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        **overrides,
    }


async def _request(api: Api, t: TenantWorld, who: str, cid: str, content: bytes, **kw: Any) -> Any:
    reply = await api.post(t.slug, t.tokens[who], REQUEST, {"c": cid, "i": _input(content, **kw)})
    return reply.ok()["requestAttachmentUpload"]


async def _put(url: str, content: bytes, content_type: str = "application/pdf") -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.put(url, content=content, headers={"Content-Type": content_type})
    assert reply.status_code == 200, reply.text


async def _upload(
    api: Api, t: TenantWorld, who: str, cid: str, content: bytes = PDF, **kw: Any
) -> dict[str, Any]:
    """Request, PUT and complete; returns the stored attachment."""
    ticket = await _request(api, t, who, cid, content, **kw)
    await _put(ticket["uploadUrl"], content, kw.get("contentType", "application/pdf"))
    done = await api.post(t.slug, t.tokens[who], COMPLETE, {"id": ticket["attachment"]["id"]})
    return dict(done.ok()["completeAttachmentUpload"])


async def _row(t: TenantWorld, attachment_id: str) -> Any:
    return await run_in_tenant(
        t.ref,
        lambda: raw_connection().fetchrow(
            "SELECT * FROM attachment WHERE id = $1::uuid", attachment_id
        ),
    )


async def _changes(t: TenantWorld, attachment_id: str) -> list[Any]:
    return await run_in_tenant(
        t.ref,
        lambda: raw_connection().fetch(
            "SELECT action, actor_id, reason FROM customer_change"
            " WHERE record_type = 'attachment' AND record_id = $1::uuid ORDER BY id",
            attachment_id,
        ),
    )


async def _contract(t: TenantWorld, cid: str) -> str:
    number = f"HT-{os.urandom(4).hex()}"
    return str(
        await run_in_tenant(
            t.ref,
            lambda: raw_connection().fetchval(
                "INSERT INTO contract (customer_id, number, title) VALUES ($1::uuid, $2, $3)"
                " RETURNING id",
                cid,
                number,
                "年度服务合同",
            ),
        )
    )


async def _download(api: Api, t: TenantWorld, who: str, attachment_id: str) -> Any:
    return await api.post(t.slug, t.tokens[who], DOWNLOAD, {"id": attachment_id})


async def test_sales_uploads_a_contract_scan_and_gets_the_same_bytes_back(
    api: Api, world: World, objects: ObjectStore
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    contract = await _contract(t, cid)
    ticket = await _request(api, t, "sales", cid, PDF, contractId=contract)
    pending = ticket["attachment"]
    assert pending["status"] == "PENDING" and pending["contractId"] == contract
    assert pending["uploadedBy"] == t.people["sales"].identity_id
    await _put(ticket["uploadUrl"], PDF)
    done = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": pending["id"]})
    stored = done.ok()["completeAttachmentUpload"]
    assert stored["status"] == "STORED" and stored["downloadable"] is True
    assert stored["sensitivity"] == "business" and stored["filename"] == "合同 2026-001.pdf"

    row = await _row(t, pending["id"])
    assert row["object_key"] == f"attachments/alpha/{cid}/{pending['id']}"
    assert row["stored_at"] is not None
    info = await objects.stat(row["object_key"])
    assert info is not None and info.size == len(PDF) and info.encrypted
    assert await objects.stat(row["object_key"] + ".upload") is None

    link = (await _download(api, t, "sales", pending["id"])).ok()["attachmentDownloadUrl"]
    async with httpx.AsyncClient() as client:
        got = await client.get(link["url"])
    assert got.status_code == 200 and got.content == PDF
    assert "%E5%90%88%E5%90%8C%202026-001.pdf" in got.headers["content-disposition"]

    listed = (await api.post("alpha", t.tokens["sales"], LISTING, {"id": cid})).ok()
    assert pending["id"] in [a["id"] for a in listed["customer"]["attachments"]]
    assert [(c["action"], c["actor_id"]) for c in await _changes(t, pending["id"])] == [
        ("create", t.people["sales"].identity_id)
    ]
    again = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": pending["id"]})
    assert again.ok()["completeAttachmentUpload"]["status"] == "STORED"
    assert len(await _changes(t, pending["id"])) == 1


@pytest.mark.parametrize(
    ("declared", "sent", "content_type", "field"),
    [
        (PDF + b"extra", PDF, "application/pdf", "sizeBytes"),
        (b"%PDF-" + bytes(len(PDF) - 5), PDF, "application/pdf", "sha256"),
        (PDF, PDF, "image/png", "contentType"),
        (PNG, PNG, "application/pdf", "contentType"),
    ],
    ids=["size", "checksum", "sent-as-other-type", "content-not-pdf"],
)
async def test_a_file_that_is_not_what_was_declared_is_removed_and_not_stored(
    api: Api,
    world: World,
    objects: ObjectStore,
    declared: bytes,
    sent: bytes,
    content_type: str,
    field: str,
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    ticket = await _request(api, t, "sales", cid, declared)
    attachment_id = ticket["attachment"]["id"]
    await _put(ticket["uploadUrl"], sent, content_type)
    reply = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": attachment_id})
    assert reply.codes == ["CONFLICT"]
    assert reply.errors[0]["extensions"]["field"] == field
    row = await _row(t, attachment_id)
    assert row["status"] == "PENDING" and row["stored_at"] is None
    assert await objects.stat(row["object_key"]) is None
    assert await objects.stat(row["object_key"] + ".upload") is None
    assert (await _download(api, t, "sales", attachment_id)).codes == ["NOT_FOUND"]
    assert await _changes(t, attachment_id) == []


async def test_completing_without_an_upload_says_so_and_a_retry_succeeds(
    api: Api, world: World
) -> None:
    t = world["alpha"]
    ticket = await _request(api, t, "sales", _owned_by(t, "sales"), PDF)
    attachment_id = ticket["attachment"]["id"]
    missing = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": attachment_id})
    assert missing.codes == ["CONFLICT"] and "PUT the file" in missing.errors[0]["message"]
    await _put(ticket["uploadUrl"], PDF[:100])
    assert (await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": attachment_id})).codes == [
        "CONFLICT"
    ]
    await _put(ticket["uploadUrl"], PDF)
    done = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": attachment_id})
    assert done.ok()["completeAttachmentUpload"]["status"] == "STORED"


async def test_bad_input_is_named_for_every_operation(
    api: Api, world: World, settings: Settings
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    other_contract = await _contract(t, _owned_by(t, "sales2"))
    cases = {
        "filename": {"filename": "../../"},
        "contentType": {"contentType": "text/html"},
        "sizeBytes": {"sizeBytes": 0},
        "sha256": {"sha256": "not-a-digest"},
        "contractId": {"contractId": "not-a-uuid"},
    }
    cases_more = [
        ("filename", {"filename": "x" * 252 + ".pdf"}),
        ("sizeBytes", {"sizeBytes": settings.attachment_max_bytes + 1}),
        ("contractId", {"contractId": other_contract}),
        ("contractId", {"contractId": missing_id()}),
    ]
    for field, override in [*cases.items(), *cases_more]:
        reply = await api.post(
            "alpha", t.tokens["sales"], REQUEST, {"c": cid, "i": _input(PDF, **override)}
        )
        assert reply.codes == ["BAD_USER_INPUT"], (field, reply.body)
        assert reply.errors[0]["extensions"]["field"] == field, (field, reply.body)
    bad_category = await api.post(
        "alpha", t.tokens["sales"], REQUEST, {"c": cid, "i": _input(PDF, category="SELFIE")}
    )
    assert bad_category.codes == ["BAD_USER_INPUT"]
    assert "SELFIE" in bad_category.errors[0]["message"]
    for bad_id in ("nope", missing_id()):
        request = await api.post(
            "alpha", t.tokens["sales"], REQUEST, {"c": bad_id, "i": _input(PDF)}
        )
        complete = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": bad_id})
        download = await _download(api, t, "sales", bad_id)
        delete = await api.post(
            "alpha", t.tokens["sales"], DELETE, {"id": bad_id, "r": "scanned the wrong page"}
        )
        assert [r.codes for r in (request, complete, download, delete)] == [["NOT_FOUND"]] * 4
    stored = await _upload(api, t, "sales", cid)
    short = await api.post("alpha", t.tokens["sales"], DELETE, {"id": stored["id"], "r": "no"})
    assert short.codes == ["BAD_USER_INPUT"] and short.errors[0]["extensions"]["field"] == "reason"

    path = await _request(api, t, "sales", cid, PDF, filename="C:\\scans\\..\\合同.pdf")
    assert path["attachment"]["filename"] == "合同.pdf"


async def test_sales_lists_an_id_copy_masked_and_cannot_download_it(api: Api, world: World) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales", individual=True)
    copy = await _upload(
        api,
        t,
        "sales",
        cid,
        JPEG,
        category="ID_COPY",
        filename="张三身份证.jpg",
        contentType="image/jpeg",
    )
    assert copy["status"] == "STORED" and copy["sensitivity"] == "identity"
    assert copy["filename"] == "****.jpg" and copy["downloadable"] is False
    assert (await _download(api, t, "sales", copy["id"])).codes == ["NOT_FOUND"]
    listed = (await api.post("alpha", t.tokens["sales"], LISTING, {"id": cid})).ok()
    mine = next(a for a in listed["customer"]["attachments"] if a["id"] == copy["id"])
    assert mine["filename"] == "****.jpg" and mine["downloadable"] is False

    admin = (await api.post("alpha", t.tokens["admin"], LISTING, {"id": cid})).ok()
    theirs = next(a for a in admin["customer"]["attachments"] if a["id"] == copy["id"])
    assert theirs["filename"] == "张三身份证.jpg" and theirs["downloadable"] is True
    link = (await _download(api, t, "admin", copy["id"])).ok()["attachmentDownloadUrl"]
    async with httpx.AsyncClient() as client:
        assert (await client.get(link["url"])).content == JPEG


async def test_auditor_sees_a_contract_scan_masked_and_cannot_fetch_or_add_files(
    api: Api, world: World
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    scan = await _upload(api, t, "sales", cid)
    licence = await _upload(
        api,
        t,
        "sales",
        cid,
        PNG,
        category="LICENSE",
        filename="营业执照.png",
        contentType="image/png",
    )
    listed = (await api.post("alpha", t.tokens["auditor"], LISTING, {"id": cid})).ok()
    seen = {a["id"]: a for a in listed["customer"]["attachments"]}
    assert seen[scan["id"]]["filename"] == "****.pdf" and not seen[scan["id"]]["downloadable"]
    assert seen[licence["id"]]["filename"] == "营业执照.png" and seen[licence["id"]]["downloadable"]
    assert (await _download(api, t, "auditor", scan["id"])).codes == ["NOT_FOUND"]
    assert (await _download(api, t, "auditor", licence["id"])).status == 200
    upload = await api.post("alpha", t.tokens["auditor"], REQUEST, {"c": cid, "i": _input(PDF)})
    assert upload.codes == ["FORBIDDEN"]
    delete = await api.post(
        "alpha", t.tokens["auditor"], DELETE, {"id": scan["id"], "r": "auditor wants it gone"}
    )
    assert delete.codes == ["FORBIDDEN"]


async def test_nobody_else_learns_that_the_attachment_or_its_customer_exists(
    api: Api, world: World
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    ticket = await _request(api, t, "sales", cid, PDF)
    pending_id = ticket["attachment"]["id"]
    stored = await _upload(api, t, "sales", cid)
    outsiders: list[tuple[str, str]] = [("alpha", t.tokens["sales2"]), ("alpha", t.keys["writer"])]
    outsiders += [
        (slug, world[slug].tokens[who]) for slug in ("beta", "gamma") for who in ("admin", "sales")
    ]
    for slug, credential in outsiders:
        for attachment_id in (stored["id"], pending_id):
            replies = [
                await api.post(slug, credential, COMPLETE, {"id": attachment_id}),
                await api.post(slug, credential, DOWNLOAD, {"id": attachment_id}),
                await api.post(
                    slug, credential, DELETE, {"id": attachment_id, "r": "not mine at all"}
                ),
            ]
            assert [r.codes for r in replies] == [["NOT_FOUND"]] * 3, (slug, replies)
        request = await api.post(slug, credential, REQUEST, {"c": cid, "i": _input(PDF)})
        listing = await api.post(slug, credential, LISTING, {"id": cid})
        assert request.codes == ["NOT_FOUND"] and listing.codes == ["NOT_FOUND"], slug
        assert stored["id"] not in str(request.body) + str(listing.body)
    reader = t.keys["reader"]
    assert (await api.post("alpha", reader, DOWNLOAD, {"id": stored["id"]})).codes == ["NOT_FOUND"]
    assert (await api.post("alpha", reader, LISTING, {"id": cid})).codes == ["NOT_FOUND"]
    assert (await api.post("alpha", reader, REQUEST, {"c": cid, "i": _input(PDF)})).codes == [
        "FORBIDDEN"
    ]
    assert (await _row(t, stored["id"]))["status"] == "STORED"


async def test_deletion_removes_the_file_and_keeps_the_record(
    api: Api, world: World, objects: ObjectStore
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales")
    stored = await _upload(api, t, "sales", cid)
    key = (await _row(t, stored["id"]))["object_key"]
    reason = "uploaded the wrong customer's contract"
    deleted = await api.post("alpha", t.tokens["sales"], DELETE, {"id": stored["id"], "r": reason})
    body = deleted.ok()["deleteAttachment"]
    assert body["status"] == "DELETED" and body["deleteReason"] == reason
    assert body["deletedBy"] == t.people["sales"].identity_id and body["downloadable"] is False
    row = await _row(t, stored["id"])
    assert row["status"] == "DELETED" and row["deleted_at"] is not None
    assert await objects.stat(key) is None
    assert (await _download(api, t, "sales", stored["id"])).codes == ["NOT_FOUND"]
    assert (await _download(api, t, "admin", stored["id"])).codes == ["NOT_FOUND"]
    changes = await _changes(t, stored["id"])
    assert [(c["action"], c["reason"]) for c in changes] == [("create", None), ("delete", reason)]
    listed = (await api.post("alpha", t.tokens["admin"], LISTING, {"id": cid})).ok()
    kept = next(a for a in listed["customer"]["attachments"] if a["id"] == stored["id"])
    assert kept["status"] == "DELETED" and kept["deleteReason"] == reason
    again = await api.post("alpha", t.tokens["sales"], DELETE, {"id": stored["id"], "r": reason})
    complete = await api.post("alpha", t.tokens["sales"], COMPLETE, {"id": stored["id"]})
    assert again.codes == ["CONFLICT"] and complete.codes == ["CONFLICT"]


async def test_a_page_of_customers_lists_each_ones_attachments_in_one_query(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = world["gamma"]
    first, second = _owned_by(t, "sales"), _owned_by(t, "sales2")
    one = await _upload(api, t, "sales", first)
    two = await _upload(api, t, "sales2", second, category="OTHER", filename="备注.pdf")
    batches: list[int] = []
    real = files.attachments_of_customers

    async def counted(access: Any, customer_ids: Any) -> Any:
        batches.append(len(customer_ids))
        return await real(access, customer_ids)

    monkeypatch.setattr(files, "attachments_of_customers", counted)
    page = "{ customers(first: 100) { nodes { id attachments { id filename } } } }"
    nodes = (await api.post("gamma", t.tokens["admin"], page)).ok()["customers"]["nodes"]
    assert batches == [len(nodes)]
    by_customer = {n["id"]: [a["id"] for a in n["attachments"]] for n in nodes}
    assert one["id"] in by_customer[first] and one["id"] not in by_customer[second]
    assert two["id"] in by_customer[second]
    mine = (await api.post("gamma", t.tokens["sales"], page)).ok()["customers"]["nodes"]
    assert two["id"] not in str(mine)


SHARE = "mutation($input: RequestShareInput!) { requestShare(input: $input) { id } }"
APPROVE = "mutation($id: ID!, $c: String!) { approveShare(id: $id, comment: $c) { id } }"
REVOKE = "mutation($id: ID!, $r: String!) { revokeShare(id: $id, reason: $r) { id } }"
CONSENT = (
    "mutation($id: ID!, $v: Int!, $on: Boolean!) { updateCustomer(id: $id, version: $v,"
    " input: {consentsToSharing: $on}) { version } }"
)
VERSION = "query($id: ID!) { customer(id: $id) { version } }"


async def test_partner_app_gets_only_the_classes_shared_with_it(api: Api, world: World) -> None:
    t = world["beta"]
    cid = _owned_by(t, "sales", individual=True)
    admin = t.tokens["admin"]
    licence = await _upload(
        api, t, "admin", cid, PNG, category="LICENSE", filename="执照.png", contentType="image/png"
    )
    scan = await _upload(api, t, "admin", cid)
    copy = await _upload(
        api,
        t,
        "admin",
        cid,
        JPEG,
        category="ID_COPY",
        filename="身份证.jpg",
        contentType="image/jpeg",
    )
    app_id = (await api.post("beta", t.keys["reader"], "{ me { id } }")).ok()["me"]["id"]
    share = {
        "customerIds": [cid],
        "grantee": {"kind": "PARTNER_APP", "id": app_id},
        "classes": ["basic", "identity"],
        "level": "FULL",
        "purpose": "partner verifies business licences",
        "until": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }
    made = (await api.post("beta", t.tokens["sales"], SHARE, {"input": share})).ok()["requestShare"]
    (await api.post("beta", admin, APPROVE, {"id": made["id"], "c": "partner onboarding"})).ok()
    version = (await api.post("beta", admin, VERSION, {"id": cid})).ok()["customer"]["version"]
    (await api.post("beta", admin, CONSENT, {"id": cid, "v": version, "on": True})).ok()
    try:
        listed = (await api.post("beta", t.keys["reader"], LISTING, {"id": cid})).ok()
        assert [a["id"] for a in listed["customer"]["attachments"]] == [licence["id"]]
        assert (await _download(api, t, "admin", licence["id"])).status == 200
        reader = t.keys["reader"]
        assert (await api.post("beta", reader, DOWNLOAD, {"id": licence["id"]})).status == 200
        for hidden in (scan["id"], copy["id"]):
            assert (await api.post("beta", reader, DOWNLOAD, {"id": hidden})).codes == ["NOT_FOUND"]
    finally:
        (await api.post("beta", admin, REVOKE, {"id": made["id"], "r": "test over"})).ok()
        (await api.post("beta", admin, CONSENT, {"id": cid, "v": version + 1, "on": False})).ok()


HISTORY = (
    "query($id: ID!) { customerHistory(id: $id, first: 200) { nodes { recordType recordId"
    " action fields { field oldValue newValue } } } }"
)


async def _attachment_history(api: Api, t: TenantWorld, who: str, cid: str) -> dict[str, Any]:
    reply = await api.post(t.slug, t.tokens[who], HISTORY, {"id": cid})
    nodes = reply.ok()["customerHistory"]["nodes"]
    return {n["recordId"]: n for n in nodes if n["recordType"] == "attachment"}


async def test_the_history_shows_attachments_as_their_class_allows(api: Api, world: World) -> None:
    t = world["gamma"]
    cid = _owned_by(t, "sales", individual=True)
    scan = await _upload(api, t, "sales", cid)
    copy = await _upload(
        api, t, "admin", cid, JPEG, category="ID_COPY", filename="x.jpg", contentType="image/jpeg"
    )
    admin = await _attachment_history(api, t, "admin", cid)
    fields = {f["field"]: f["newValue"] for f in admin[copy["id"]]["fields"]}
    assert fields == {
        "category": "ID_COPY",
        "status": "STORED",
        "sizeBytes": str(len(JPEG)),
        "sha256": copy["sha256"],
    }
    assert scan["id"] in admin
    # Sales sees business in full but identity only masked, and these fields have no
    # masked form: the contract scan's upload is in their history, the ID copy's is not.
    sales = await _attachment_history(api, t, "sales", cid)
    assert scan["id"] in sales and copy["id"] not in sales
    assert (await api.post(t.slug, t.tokens["sales2"], HISTORY, {"id": cid})).codes == ["NOT_FOUND"]


async def test_an_id_copy_listed_masked_hides_its_checksum_size_and_reason(
    api: Api, world: World
) -> None:
    t = world["alpha"]
    cid = _owned_by(t, "sales", individual=True)
    copy = await _upload(
        api,
        t,
        "admin",
        cid,
        JPEG,
        category="ID_COPY",
        filename="身份证.jpg",
        contentType="image/jpeg",
    )
    reason = "scanned the wrong side of the card"
    (await api.post("alpha", t.tokens["admin"], DELETE, {"id": copy["id"], "r": reason})).ok()
    admin = (await api.post("alpha", t.tokens["admin"], LISTING, {"id": cid})).ok()
    full = next(a for a in admin["customer"]["attachments"] if a["id"] == copy["id"])
    assert full["sha256"] == hashlib.sha256(JPEG).hexdigest() and full["sizeBytes"] == len(JPEG)
    assert full["deleteReason"] == reason

    listed = await api.post("alpha", t.tokens["auditor"], LISTING, {"id": cid})
    nodes = listed.ok()["customer"]["attachments"]
    index, seen = next((i, a) for i, a in enumerate(nodes) if a["id"] == copy["id"])
    assert seen["filename"] == "****.jpg" and seen["status"] == "DELETED"
    hidden = ("contractId", "sizeBytes", "sha256", "deleteReason")
    assert [seen[name] for name in hidden] == [None] * 4
    paths = set(listed.body.get("extensions", {}).get("redacted", []))
    assert {f"customer.attachments.{index}.{name}" for name in hidden} <= paths
    assert hashlib.sha256(JPEG).hexdigest() not in listed.text and reason not in listed.text


MERGE = """mutation($s: ID!, $o: [ID!]!) {
  mergeCustomers(survivorId: $s, otherIds: $o, reason: "同一客户重复建档") { id } }"""
MERGED_PREFIX = "附件合并测试"


async def test_no_file_can_be_added_to_a_merged_customer(api: Api, world: World) -> None:
    t = world["alpha"]

    async def make() -> list[str]:
        conn = raw_connection()
        return [
            str(
                await conn.fetchval(
                    "INSERT INTO customer (kind, name, owner_id) VALUES ('ENTERPRISE', $1, $2)"
                    " RETURNING id",
                    f"{MERGED_PREFIX}{n}",
                    t.people["sales"].identity_id,
                )
            )
            for n in range(2)
        ]

    async def remove() -> None:
        conn = raw_connection()
        like = f"{MERGED_PREFIX}%"
        await conn.execute("UPDATE customer SET merged_into = NULL WHERE name LIKE $1", like)
        await conn.execute("DELETE FROM customer WHERE name LIKE $1", like)

    survivor, merged = await run_in_tenant(t.ref, make)
    try:
        made = await api.post("alpha", t.tokens["admin"], MERGE, {"s": survivor, "o": [merged]})
        made.ok()
        answers = [
            await api.post("alpha", t.tokens[who], REQUEST, {"c": customer, "i": _input(PDF)})
            for who in ("admin", "sales")
            for customer in (merged, missing_id())
        ]
        errors = {(r.errors[0]["message"], r.errors[0]["extensions"]["code"]) for r in answers}
        assert [r.codes for r in answers] == [["NOT_FOUND"]] * 4 and len(errors) == 1
        count = await run_in_tenant(
            t.ref,
            lambda: raw_connection().fetchval(
                "SELECT count(*) FROM attachment WHERE customer_id = $1::uuid", merged
            ),
        )
        assert count == 0
    finally:
        await run_in_tenant(t.ref, remove)
