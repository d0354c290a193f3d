"""The compliance report's retention section: destructions by rule, marks, unmarks,
what waits now, and legal holds — counts only, and only the tenant's own."""

from __future__ import annotations

from datetime import timedelta

from dangan.storage import ObjectStore
from tests.retention.support import YEAR, Scratch, now
from tests.support.api import Api
from tests.support.world import World

REPORT = """query($from: DateTime!, $to: DateTime!) { complianceReport(from: $from, to: $to) {
  retention { byRule { rule destructions recordsDestroyed approved operatorClock marked
  unmarked pendingNow awaitingApprovalNow } holdsPlaced holdsReleased holdsActiveAtEnd
  filesPendingNow } } }"""


async def test_the_report_counts_purges_holds_and_what_waits(
    scratch: Scratch, objects: ObjectStore, api: Api, world: World
) -> None:
    start = now() - timedelta(minutes=1)
    gone = await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    held = await scratch.customer("涉诉无效", status="INVALID", age=4 * YEAR)
    waiting = await scratch.customer("沉睡潜客", kind="POTENTIAL", age=3 * YEAR)
    await scratch.run(objects)
    await scratch.sql(
        "UPDATE retention_candidate SET marked_at = marked_at - interval '40 days',"
        " due_at = due_at - interval '40 days' WHERE record_id = $1",
        gone,
    )
    placed = await api.post(
        scratch.slug,
        scratch.tokens["auditor"],
        'mutation($id: ID!) { placeLegalHold(customerId: $id, reason: "诉讼保全") { id } }',
        {"id": str(held)},
    )
    placed.ok()
    await scratch.run(objects)
    assert not await scratch.exists("customer", gone) and waiting

    period = {"from": start.isoformat(), "to": (now() + timedelta(minutes=1)).isoformat()}
    reply = await api.post(scratch.slug, scratch.tokens["auditor"], REPORT, period)
    section = reply.ok()["complianceReport"]["retention"]
    by_rule = {r["rule"]: r for r in section["byRule"]}
    assert by_rule["invalid_customers"] == {
        "rule": "invalid_customers",
        "destructions": 1,
        "recordsDestroyed": 1,
        "approved": 0,
        "operatorClock": 0,
        "marked": 2,
        "unmarked": 1,  # the held one
        "pendingNow": 0,
        "awaitingApprovalNow": 0,
    }
    assert by_rule["inactive_potential_customers"]["pendingNow"] == 1
    assert (section["holdsPlaced"], section["holdsReleased"], section["holdsActiveAtEnd"]) == (
        1,
        0,
        1,
    )
    assert section["filesPendingNow"] == 0

    theirs = await api.post("alpha", world["alpha"].tokens["auditor"], REPORT, period)
    alpha = theirs.ok()["complianceReport"]["retention"]
    assert all(r["destructions"] == r["marked"] == 0 for r in alpha["byRule"])
    assert alpha["holdsPlaced"] == 0
