"""The compliance report's alerts section: alerts opened and closed in the period, by
rule and severity, those still open when it ended (whenever opened), who decided on
each — only the tenant's own, and never the free text of notes and reasons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from dangan.settings import Settings
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.audit.reports import clock, csv_tables, html_tables, report_file, staffed_tenant
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import TenantWorld, World

ALERTS = """query($from: DateTime!, $to: DateTime!) { complianceReport(from: $from, to: $to) {
  alerts { opened closed openAtEnd
    byRule { rule severity opened openNow acknowledgedNow closedNow suspensions }
    alerts { rule severity status actorKind actorName occurrences suspended
             acknowledgedBy closedBy } } } }"""
SECRET_REASON = "客户张三 13800001111 的电话是 reason text"
_OPEN = (
    "INSERT INTO alert (rule, severity, actor_kind, actor_id, actor_name, actor_key, summary,"
    " opened_at, last_seen_at, first_seq, last_seq, evidence, suspended)"
    " VALUES ($1, $2, $3, $4, $5, $6, 'test alert', $7, $7, 1, 1, '{}', $8) RETURNING id"
)


@dataclass
class Period:
    tenant: TenantWorld
    start: datetime
    end: datetime


async def _open(
    tenant: TenantRef,
    rule: str,
    severity: str,
    actor: tuple[str, int | None, str],
    *,
    at: str = "now()",
    suspended: bool = False,
) -> int:
    kind, actor_id, name = actor
    key = f"{kind}:{actor_id}" if actor_id is not None else f"address:{name}"

    async def insert() -> int:
        conn = raw_connection()
        opened = await conn.fetchval(f"SELECT {at}")
        return int(
            await conn.fetchval(_OPEN, rule, severity, kind, actor_id, name, key, opened, suspended)
        )

    return await run_in_tenant(tenant, insert)


async def _decide(tenant: TenantRef, alert_id: int, sql: str, *args: object) -> None:
    await run_in_tenant(tenant, lambda: raw_connection().execute(sql, alert_id, *args))


@pytest.fixture(scope="module")
async def period(world: World, settings: Settings) -> AsyncIterator[Period]:
    t = await staffed_tenant("compliance_alerts", settings)
    sales, admin = t.people["sales"], t.people["admin"]
    sales_actor = ("user", sales.identity_id, "compliance_alerts-sales")
    # Opened last week and still open: not in the period's count, open at its end.
    await _open(t.ref, "off_hours", "medium", sales_actor, at="now() - interval '7 days'")
    start = await clock(t.ref)
    await _open(t.ref, "bulk_read", "high", sales_actor, suspended=True)
    probing = await _open(t.ref, "probing", "high", ("anonymous", None, "10.9.9.9"))
    await _decide(
        t.ref,
        probing,
        "UPDATE alert SET status = 'closed', closed_at = now(), closed_by = $2,"
        " close_reason = $3 WHERE id = $1",
        admin.identity_id,
        SECRET_REASON,
    )
    reveal = await _open(t.ref, "reveal_burst", "medium", sales_actor)
    await _decide(
        t.ref,
        reveal,
        "UPDATE alert SET status = 'acknowledged', acknowledged_at = now(),"
        " acknowledged_by = $2, acknowledge_note = $3 WHERE id = $1",
        admin.identity_id,
        SECRET_REASON,
    )
    # Another tenant's alert in the same period: never counted here.
    beta_sales = world["beta"].people["sales"]
    await _open(world["beta"].ref, "export_spike", "high", ("user", beta_sales.identity_id, "b"))
    end = await clock(t.ref)
    yield Period(t, start, end)
    await drop_tenant(t.slug)


async def test_alerts_are_counted_by_rule_and_status(api: Api, period: Period) -> None:
    t = period.tenant
    variables = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    got = (await api.post(t.slug, t.tokens["auditor"], ALERTS, variables)).ok()
    alerts = got["complianceReport"]["alerts"]

    assert (alerts["opened"], alerts["closed"], alerts["openAtEnd"]) == (3, 1, 3)
    assert alerts["byRule"] == [
        {"rule": "bulk_read", "severity": "high", "opened": 1, "openNow": 1}
        | {"acknowledgedNow": 0, "closedNow": 0, "suspensions": 1},
        {"rule": "probing", "severity": "high", "opened": 1, "openNow": 0}
        | {"acknowledgedNow": 0, "closedNow": 1, "suspensions": 0},
        {"rule": "reveal_burst", "severity": "medium", "opened": 1, "openNow": 0}
        | {"acknowledgedNow": 1, "closedNow": 0, "suspensions": 0},
    ]
    by_rule = {a["rule"]: a for a in alerts["alerts"]}
    assert set(by_rule) == {"bulk_read", "probing", "reveal_burst"}
    assert by_rule["probing"]["closedBy"] == "compliance_alerts-admin"
    assert by_rule["probing"]["actorName"] == "10.9.9.9"
    assert by_rule["reveal_burst"]["acknowledgedBy"] == "compliance_alerts-admin"
    assert by_rule["bulk_read"]["suspended"] is True


async def test_the_files_show_the_same_alerts_without_their_reasons(
    api: Api, period: Period
) -> None:
    t = period.tenant
    _, csv_data = await report_file(api, t, period.start, period.end, "CSV")
    _, html_data = await report_file(api, t, period.start, period.end, "HTML")

    from_csv, from_html = csv_tables(csv_data), html_tables(html_data)
    assert from_csv["alerts_by_rule"] == from_html["alerts_by_rule"]
    assert len(from_csv["alerts"]) == 3 and from_csv["alerts"] == from_html["alerts"]
    assert ["probing", "high", "1", "0", "0", "1", "0"] in from_csv["alerts_by_rule"]
    for data in (csv_data.decode("utf-8-sig"), html_data.decode()):
        assert "13800001111" not in data and "张三" not in data
