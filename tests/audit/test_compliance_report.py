"""合规审查: the compliance report counts, exactly and by role, what real requests did in
a period — in their tenant only — shows the same figures as CSV, HTML and JSON, reports
a tampered audit chain, and is refused to everyone but auditors and administrators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from dangan.audit.verify import verify_chain, verify_open_chain
from dangan.authz.engine import PolicyEngine
from dangan.authz.store import polar_sources, read_policy_dir
from dangan.authz.subjects import PartnerApp, User
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection, run_in_tenant
from tests.audit.reports import (
    clock,
    csv_tables,
    html_tables,
    report,
    report_file,
    staffed_tenant,
)
from tests.support.api import Api
from tests.support.archive import START_EXPORT, forget_jobs, run_jobs
from tests.support.tenants import drop_tenant
from tests.support.world import TenantWorld, World

UPDATE = """mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, version: 1, input: $input, reason: "年采购额过千万") {
    pendingChanges { id } } }"""
APPROVE_CHANGE = 'mutation($id: ID!) { approveChange(id: $id, comment: "同意") { status } }'
REVEAL = """mutation($id: ID!) { revealField(customerId: $id, field: "idNumber",
  reason: "verifying identity for a contract") { value } }"""
REQUEST_SHARE = "mutation($input: RequestShareInput!) { requestShare(input: $input) { id } }"
APPROVE_SHARE = 'mutation($id: ID!) { approveShare(id: $id, comment: "ok") { status } }'
APPROVE_EXPORT = "mutation($id: ID!) { approveExport(id: $id) { status } }"
PROPOSE = """mutation($files: [PolicyFileInput!]!) {
  proposePolicy(files: $files, comment: "same rules, kept as a version") { id } }"""
ACTIVATE = "mutation($v: Int!) { activatePolicy(version: $v) { status } }"
MINE = "{ customers(first: 10) { nodes { id name } } }"
ONE = "query($id: ID!) { customer(id: $id) { id name } }"
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"


@dataclass
class Window:
    """The scratch tenant, and a period in which exactly the story below happened."""

    tenant: TenantWorld
    start: datetime
    end: datetime
    policy_version: int


async def _story(api: Api, t: TenantWorld, settings: Settings, endpoints: Endpoints) -> int:
    """Sales reads, changes, reveals, shares and exports; a manager approves; an
    administrator activates a policy version; an app reads; a stranger is refused."""
    slug, c1 = t.slug, str(t.customers[0]["id"])
    sales, manager, admin = t.tokens["sales"], t.tokens["manager"], t.tokens["admin"]
    (await api.post(slug, sales, MINE)).ok()
    (await api.post(slug, sales, ONE, {"id": c1})).ok()
    updated = (await api.post(slug, sales, UPDATE, {"id": c1, "input": {"tier": "KEY"}})).ok()
    [change] = updated["updateCustomer"]["pendingChanges"]
    (await api.post(slug, sales, REVEAL, {"id": c1})).ok()
    share = {
        "customerIds": [c1],
        "grantee": {"kind": "USER", "id": t.people["sales2"].identity_id},
        "classes": ["contact"],
        "purpose": "covering for a colleague on leave",
        "until": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }
    requested = (await api.post(slug, sales, REQUEST_SHARE, {"input": share})).ok()
    export = (await api.post(slug, sales, START_EXPORT, {"input": {"format": "CSV"}})).ok()
    assert export["startCustomerExport"]["status"] == "AWAITING_APPROVAL"
    assert (await api.post(slug, sales, "{ policyVersions { id } }")).codes == ["FORBIDDEN"]
    assert (await api.post(slug, sales, "{ nope }")).status == 400
    (await api.post(slug, manager, APPROVE_CHANGE, {"id": change["id"]})).ok()
    (await api.post(slug, manager, APPROVE_SHARE, {"id": requested["requestShare"]["id"]})).ok()
    (
        await api.post(slug, manager, APPROVE_EXPORT, {"id": export["startCustomerExport"]["id"]})
    ).ok()
    await run_jobs(settings, endpoints)
    files = {p.name: p.read_text() for p in POLICY_DIR.glob("*.polar")}
    files |= {f"tests/{p.name}": p.read_text() for p in (POLICY_DIR / "tests").glob("*.yaml")}
    files_input = [{"name": name, "content": text} for name, text in files.items()]
    version = (await api.post(slug, admin, PROPOSE, {"files": files_input})).ok()
    version_id = int(version["proposePolicy"]["id"])
    (await api.post(slug, admin, ACTIVATE, {"v": version_id})).ok()
    (await api.post(slug, t.keys["reader"], "{ customers(first: 5) { nodes { id } } }")).ok()
    assert (await api.post(slug, "not-a-real-token", MINE)).status == 401
    return version_id


@pytest.fixture(scope="module")
async def window(
    api: Api, world: World, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[Window]:
    t = await staffed_tenant("compliance_rpt", settings)
    await run_in_tenant(
        t.ref,
        lambda: raw_connection().execute(
            "INSERT INTO archive_setting (key, value) VALUES ('export_approval_threshold', '1')"
        ),
    )
    beta = world["beta"]
    start = await clock(t.ref)
    version = await _story(api, t, settings, endpoints)
    # Meanwhile in beta: reads and a refusal that must never count in the other tenant.
    (await api.post("beta", beta.tokens["sales"], MINE)).ok()
    assert (await api.post("beta", beta.tokens["sales"], "{ policyVersions { id } }")).codes == [
        "FORBIDDEN"
    ]
    end = await clock(t.ref)
    yield Window(t, start, end, version)
    await forget_jobs(settings, endpoints)
    await drop_tenant(t.slug)


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    [found] = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return found


def _nonzero(counts: dict[str, Any]) -> dict[str, Any]:
    keys = ("actorKind", "role", "actorId", "actorName")
    return {k: v for k, v in counts.items() if k not in keys and v}


async def test_each_role_is_counted_exactly(api: Api, window: Window) -> None:
    t = window.tenant
    got = (await report(api, t, "auditor", window.start, window.end)).ok()["complianceReport"]

    assert got["tenant"] == t.slug and got["generatedBy"].startswith(f"{t.slug}-auditor <")
    by_role = got["activity"]["byRole"]
    assert [(r["actorKind"], r["role"]) for r in by_role] == [
        ("user", "admin"),
        ("user", "manager"),
        ("user", "sales"),
        ("app", None),
        ("anonymous", None),
    ]
    # Sales' eight requests, and the export job's ``export.run``, run for them.
    assert _nonzero(_row(by_role, role="sales")) == {
        "events": 9,
        "reads": 2,
        "customerRowsRead": 3,
        "customersRead": 2,
        "changesSubmitted": 1,
        "reveals": 1,
        "sharesRequested": 1,
        "exportsRequested": 1,
        "refused": 1,
        "forbidden": 1,
        "errors": 2,
    }
    assert _nonzero(_row(by_role, role="manager")) == {
        "events": 3,
        "changesApproved": 1,
        "sharesApproved": 1,
        "exportsApproved": 1,
    }
    assert _nonzero(_row(by_role, role="admin")) == {"events": 2}
    assert _nonzero(_row(by_role, actorKind="app")) == {"events": 1}
    assert _nonzero(_row(by_role, actorKind="anonymous")) == {
        "events": 1,
        "refused": 1,
        "unauthenticated": 1,
        "errors": 1,
    }
    total = got["activity"]["total"]
    assert (total["events"], total["customersRead"], total["errors"]) == (16, 2, 3)
    sales = _row(got["activity"]["byActor"], actorId=t.people["sales"].identity_id)
    assert sales["actorName"] == f"{t.slug}-sales" and sales["events"] == 9

    assert got["changes"] == {
        "recorded": 1,
        "applied": 0,
        "submitted": 1,
        "stillPending": 0,
        "approved": 1,
        "rejected": 0,
        "withdrawn": 0,
        "pendingNow": 0,
    }
    assert got["exports"] == {
        "requested": 1,
        "neededApproval": 1,
        "awaitingApproval": 0,
        "approved": 1,
        "rejected": 0,
        "completed": 1,
        "failed": 0,
        "rowsExported": 2,
    }
    shares = got["shares"]
    assert (shares["requested"], shares["approved"], shares["approvedForPeople"]) == (1, 1, 1)
    assert (shares["customersShared"], shares["activeNow"], shares["revoked"]) == (1, 1, 0)
    assert got["reveals"] == {
        "byField": [
            {
                "fieldClass": "identity",
                "field": "idNumber",
                "reveals": 1,
                "customers": 1,
                "actors": 1,
            }
        ],
        "total": 1,
    }
    admin = t.people["admin"].identity_id
    assert got["policies"] == {
        "activeVersion": window.policy_version,
        "changes": [
            {
                "version": window.policy_version,
                "status": "active",
                "proposedById": admin,
                "proposedBy": f"{t.slug}-admin",
                "activatedBy": f"{t.slug}-admin",
            }
        ],
    }
    backups = got["backups"]
    assert backups["catalogued"] is True and "no backup of this tenant" in backups["note"]
    assert (backups["made"], backups["failedRuns"], backups["lastGoodId"]) == (0, 0, None)
    chain = got["auditChain"]
    assert chain["ok"] and chain["eventsVerified"] == chain["headSeq"] >= 15
    assert chain["brokenSeq"] is None and chain["problem"] is None


async def test_another_tenants_activity_is_never_counted(
    api: Api, world: World, window: Window
) -> None:
    t = window.tenant
    ours = (await report(api, t, "admin", window.start, window.end)).ok()["complianceReport"]
    names = {a["actorName"] for a in ours["activity"]["byActor"]} - {None}
    assert names and all(name.startswith(f"{t.slug}-") or name == "reader" for name in names)

    beta = world["beta"]
    theirs = (await report(api, beta, "auditor", window.start, window.end)).ok()["complianceReport"]
    [sales] = theirs["activity"]["byRole"]
    assert sales["actorName"] is None and sales["role"] == "sales"
    assert (sales["events"], sales["reads"], sales["forbidden"]) == (2, 1, 1)
    assert theirs["activity"]["total"]["events"] == 2
    assert theirs["changes"]["recorded"] == theirs["exports"]["requested"] == 0
    assert theirs["reveals"]["total"] == theirs["shares"]["requested"] == 0


async def test_csv_html_and_json_carry_the_same_figures(api: Api, window: Window) -> None:
    t = window.tenant
    start, end = window.start, window.end
    _, csv_data = await report_file(api, t, start, end, "CSV")
    described, html_data = await report_file(api, t, start, end, "HTML")
    _, json_data = await report_file(api, t, start, end, "JSON")

    assert described["format"] == "HTML" and described["size"] == len(html_data)
    assert described["filename"] == (f"compliance-report-{t.slug}-{start:%Y%m%d}-{end:%Y%m%d}.html")
    from_csv, from_html = csv_tables(csv_data), html_tables(html_data)
    chain_rows = {"audit_chain"}  # verified anew for each file: its time differs
    assert set(from_csv) == set(from_html) and len(from_csv) >= 14
    for key in set(from_csv) - chain_rows:
        assert from_csv[key] == from_html[key], key
    assert ["sales", "9", "2", "3", "2"] in from_csv["reads_by_role"]
    assert ["all 全部", "16", "2", "3", "2"] in from_html["reads_by_role"]
    assert ["identity", "idNumber", "1", "1", "1"] in from_html["reveals"]
    assert ["rows exported 导出行数", "2"] in from_csv["exports"]
    assert ["backups made (备份次数)", "0"] in from_csv["backups"]
    assert ["last good backup (最近备份)", "none"] in from_html["backups"]

    page = html_data.decode()
    for expected in (
        "合规审查报告 Compliance report",
        t.ref.name,
        f"{t.slug}-auditor",
        "@media print",
    ):
        assert expected in page
    assert "审计链完整 Audit chain intact" in page and start.isoformat(timespec="seconds") in page
    document = orjson.loads(json_data)
    assert document["activity"]["total"]["events"] == 16
    assert document["header"]["generated_by"].startswith(f"{t.slug}-auditor")
    for data in (csv_data.decode("utf-8-sig"), page, json_data.decode()):
        for customer in t.customers:
            for value in (customer["name"], customer["phone"], customer["id_number"]):
                assert value not in data
        assert "covering for a colleague" not in data and "verifying identity" not in data


async def test_only_auditors_and_administrators_may_read_it(api: Api, window: Window) -> None:
    t = window.tenant
    for who in ("sales", "sales2", "manager", "reader", "writer"):
        refused = await report(api, t, who, window.start, window.end)
        assert refused.codes == ["FORBIDDEN"] and refused.data is None, who
    for who in ("auditor", "admin"):
        assert (await report(api, t, who, window.start, window.end)).ok()["complianceReport"]
    as_manager = await api.post(
        t.slug,
        t.tokens["manager"],
        'mutation { exportComplianceReport(from: "2025-01-01T00:00:00+00:00",'
        ' to: "2025-02-01T00:00:00+00:00", format: CSV) { url } }',
    )
    assert as_manager.codes == ["FORBIDDEN"] and as_manager.data is None


async def test_a_period_is_checked_and_named(api: Api, window: Window) -> None:
    t, start = window.tenant, window.start
    backwards = await report(api, t, "auditor", start, start - timedelta(days=1))
    assert backwards.codes == ["BAD_USER_INPUT"]
    assert backwards.errors[0]["extensions"]["field"] == "to"
    assert "later than from" in backwards.errors[0]["message"]
    too_long = await report(api, t, "auditor", start, start + timedelta(days=367))
    assert too_long.codes == ["BAD_USER_INPUT"] and "366 days" in too_long.errors[0]["message"]
    year = await report(api, t, "auditor", start, start + timedelta(days=366))
    assert year.ok()["complianceReport"]["activity"]["total"]["events"] > 0


def test_a_policy_without_the_rule_lets_nobody_read_it(settings: Settings) -> None:
    files = read_policy_dir(settings.policy_dir)
    without = {k: v for k, v in polar_sources(files).items() if k != "compliance.polar"}
    engine = PolicyEngine(without)
    full = PolicyEngine(polar_sources(files))
    auditor, sales = User(1, ("auditor",), None), User(2, ("sales",), 5)
    assert full.actor_allows("can_read_compliance_report", auditor)
    assert not full.actor_allows("can_read_compliance_report", sales)
    assert not full.actor_allows("can_read_compliance_report", PartnerApp(7, ("customers:read",)))
    assert not engine.actor_allows("can_read_compliance_report", auditor)


async def test_a_tampered_chain_is_reported_broken(
    api: Api, world: World, settings: Settings
) -> None:
    t = await staffed_tenant("compliance_chain", settings)
    try:
        start = await clock(t.ref)
        for _ in range(3):
            (await api.post(t.slug, t.tokens["auditor"], "{ me { email } }")).ok()
        end = await clock(t.ref)
        sound = (await report(api, t, "auditor", start, end)).ok()["complianceReport"]
        assert sound["auditChain"]["ok"] and sound["activity"]["total"]["events"] == 3

        await run_in_tenant(
            t.ref,
            lambda: raw_connection().execute(
                "UPDATE audit_event SET actor_name = 'someone else' WHERE seq = 2"
            ),
        )

        broken = (await report(api, t, "auditor", start, end)).ok()["complianceReport"]
        chain = broken["auditChain"]
        assert (chain["ok"], chain["brokenSeq"], chain["problem"]) == (False, 2, "edited")
        assert chain["eventsVerified"] == 1 and "event 2" in chain["message"]
        _, page = await report_file(api, t, start, end, "HTML")
        assert "审计链已损坏 Audit chain BROKEN at event 2 (edited)" in page.decode()

        # Restored, then a well-chained event slipped in beyond the head (which would also make the
        # tenant's next request fail): found by the in-transaction walk as by the CLI's.
        async def restore_then_insert() -> int:
            conn = raw_connection()
            name = f"{t.slug}-auditor"
            await conn.execute("UPDATE audit_event SET actor_name = $1 WHERE seq = 2", name)
            head: int = await conn.fetchval("SELECT last_seq FROM audit_head")
            await conn.execute(
                "INSERT INTO audit_event SELECT $1, at, request_id, actor_kind, actor_id,"
                " actor_name, client_address, user_agent, operation_type, operation_name,"
                " document_sha256, variables, outcome, error_codes, customers, fields, changes,"
                " hash, hash, actions, actor_roles FROM audit_event WHERE seq = $2",
                head + 1,
                head,
            )
            await conn.execute(
                "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers),"
                " 'hex')) WHERE seq = $1",
                head + 1,
            )
            return head

        head = await run_in_tenant(t.ref, restore_then_insert)
        in_request = await run_in_tenant(t.ref, verify_open_chain)
        walked = await verify_chain(t.ref)
        for found in (in_request, walked):
            assert found.broken is not None and found.events == head
            assert (found.broken.seq, found.broken.problem) == (head + 1, "inserted")
    finally:
        await drop_tenant(t.slug)
