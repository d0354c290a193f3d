"""Rules: the defaults, edits by who the policy allows, bad input naming its field, the
other tenants untouched. Legal holds through the API: who places and releases them, on
which customers. The preview: what a run now would do, for administrators."""

from __future__ import annotations

from datetime import timedelta

from dangan.storage import ObjectStore
from tests.retention.support import YEAR, Scratch, now
from tests.support.api import Api
from tests.support.world import World

RULES = "{ retentionRules { rule recordType enabled retentionMonths graceDays requiresApproval description } }"
SET_RULE = """mutation($rule: String!, $input: RetentionRuleInput!) {
  setRetentionRule(rule: $rule, input: $input) { rule enabled retentionMonths graceDays
  requiresApproval updatedBy } }"""
PLACE = """mutation($id: ID!, $reason: String!) { placeLegalHold(customerId: $id, reason: $reason) {
  id customerId reason active } }"""
HOLDS = (
    "query($active: Boolean) { legalHolds(active: $active) { id customerId active releaseReason } }"
)


async def test_the_defaults_are_the_regulations(scratch: Scratch, api: Api) -> None:
    rules = (await api.post(scratch.slug, scratch.tokens["sales"], RULES)).ok()["retentionRules"]
    assert [
        (r["rule"], r["recordType"], r["retentionMonths"], r["graceDays"], r["enabled"])
        for r in rules
    ] == [
        ("invalid_customers", "customer", 36, 30, True),
        ("inactive_potential_customers", "customer", 24, 30, True),
        ("communication_records", "communication", 60, 30, True),
        ("expired_share_grants", "share_request", 12, 30, True),
    ]
    assert not any(r["requiresApproval"] for r in rules)
    assert "36 months" in rules[0]["description"]
    app = await api.post(scratch.slug, scratch.app_key, RULES)
    assert app.codes == ["FORBIDDEN"]


async def test_an_administrator_edits_a_rule_and_bad_input_names_its_field(
    scratch: Scratch, api: Api, world: World
) -> None:
    admin = scratch.tokens["admin"]
    reply = await api.post(
        scratch.slug,
        admin,
        SET_RULE,
        {"rule": "communication_records", "input": {"retentionMonths": 84, "graceDays": 60}},
    )
    changed = reply.ok()["setRetentionRule"]
    assert (changed["retentionMonths"], changed["graceDays"]) == (84, 60)
    assert changed["updatedBy"] == scratch.id_of("admin")

    for variables, field, code in [
        ({"rule": "everything", "input": {"enabled": False}}, "rule", "NOT_FOUND"),
        ({"rule": "invalid_customers", "input": {"retentionMonths": 0}}, "retentionMonths", None),
        ({"rule": "invalid_customers", "input": {"graceDays": 3}}, "graceDays", None),
        ({"rule": "invalid_customers", "input": {"graceDays": 400}}, "graceDays", None),
    ]:
        bad = await api.post(scratch.slug, admin, SET_RULE, variables)
        assert bad.codes == [code or "BAD_USER_INPUT"], variables
        assert bad.errors[0]["extensions"]["field"] == field
    for who in ("auditor", "manager", "sales"):
        refused = await api.post(
            scratch.slug,
            scratch.tokens[who],
            SET_RULE,
            {"rule": "invalid_customers", "input": {"enabled": False}},
        )
        assert refused.codes == ["FORBIDDEN"], who
    refused = await api.post(
        scratch.slug,
        scratch.app_key,
        SET_RULE,
        {"rule": "invalid_customers", "input": {"enabled": False}},
    )
    assert refused.codes == ["FORBIDDEN"]

    # Nothing changed anywhere else: the other tenants keep the defaults.
    theirs = (await api.post("alpha", world["alpha"].tokens["admin"], RULES)).ok()
    months = {r["rule"]: r["retentionMonths"] for r in theirs["retentionRules"]}
    assert months["communication_records"] == 60


async def test_switching_a_rule_off_unmarks_its_candidates_at_once(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    await scratch.run(objects)
    reply = await api.post(
        scratch.slug,
        scratch.tokens["admin"],
        SET_RULE,
        {"rule": "invalid_customers", "input": {"enabled": False}},
    )
    reply.ok()
    assert await scratch.candidates() == []
    (unmarked,) = await scratch.candidates("unmarked")
    assert unmarked["unmark_reason"] == f"the rule was switched off by {scratch.slug}-admin"
    later = await scratch.run(objects, at=now() + timedelta(days=40))
    assert later.marked == [] and later.destructions == []


async def test_holds_are_placed_and_released_by_compliance_on_customers_they_see(
    scratch: Scratch, api: Api, world: World
) -> None:
    customer = str(await scratch.customer("涉诉客户"))
    reason = {"id": customer, "reason": "配合法院调查"}

    for who in ("sales", "manager"):
        refused = await api.post(scratch.slug, scratch.tokens[who], PLACE, reason)
        assert refused.codes == ["FORBIDDEN"], who
    assert (await api.post(scratch.slug, scratch.app_key, PLACE, reason)).codes == ["FORBIDDEN"]
    # Another tenant's customer: NOT_FOUND, exactly like a missing one.
    alpha = str(world["alpha"].customers[0]["id"])
    elsewhere = await api.post(
        scratch.slug, scratch.tokens["admin"], PLACE, {**reason, "id": alpha}
    )
    assert (
        elsewhere.codes == ["NOT_FOUND"]
        and elsewhere.errors[0]["extensions"]["field"] == "customerId"
    )
    short = await api.post(scratch.slug, scratch.tokens["admin"], PLACE, {**reason, "reason": "x"})
    assert short.codes == ["BAD_USER_INPUT"] and short.errors[0]["extensions"]["field"] == "reason"

    placed = (await api.post(scratch.slug, scratch.tokens["admin"], PLACE, reason)).ok()
    hold = placed["placeLegalHold"]
    assert hold["active"] and hold["customerId"] == customer
    twice = await api.post(scratch.slug, scratch.tokens["auditor"], PLACE, reason)
    assert twice.codes == ["CONFLICT"] and twice.errors[0]["extensions"]["field"] == "customerId"

    listed = await api.post(scratch.slug, scratch.tokens["auditor"], HOLDS, {"active": True})
    assert [h["id"] for h in listed.ok()["legalHolds"]] == [hold["id"]]
    assert (await api.post(scratch.slug, scratch.tokens["sales"], HOLDS)).codes == ["FORBIDDEN"]
    assert (await api.post("alpha", world["alpha"].tokens["admin"], HOLDS)).ok()["legalHolds"] == []

    release = 'mutation($id: ID!) { releaseLegalHold(id: $id, reason: "调查结束") { active releaseReason } }'
    refused = await api.post(scratch.slug, scratch.tokens["sales"], release, {"id": hold["id"]})
    assert refused.codes == ["FORBIDDEN"]
    other_tenant = await api.post(
        "alpha", world["alpha"].tokens["admin"], release, {"id": hold["id"]}
    )
    assert other_tenant.codes == ["NOT_FOUND"]
    released = await api.post(scratch.slug, scratch.tokens["auditor"], release, {"id": hold["id"]})
    assert released.ok()["releaseLegalHold"] == {"active": False, "releaseReason": "调查结束"}
    again = await api.post(scratch.slug, scratch.tokens["auditor"], release, {"id": hold["id"]})
    assert again.codes == ["CONFLICT"]
    history = await api.post(scratch.slug, scratch.tokens["auditor"], HOLDS, {"active": False})
    assert [h["releaseReason"] for h in history.ok()["legalHolds"]] == ["调查结束"]


async def test_the_preview_says_what_a_run_now_would_do_and_changes_nothing(
    scratch: Scratch, objects: ObjectStore, api: Api
) -> None:
    customer = await scratch.customer("旧无效", status="INVALID", age=4 * YEAR)
    preview = """{ retentionPreview { asOf toMark { rule recordType recordId reason dueAt }
      toUnmark { recordId } toDestroy { rule } awaitingApproval { recordId } } }"""
    reply = await api.post(scratch.slug, scratch.tokens["admin"], preview)
    (planned,) = reply.ok()["retentionPreview"]["toMark"]
    assert planned["recordId"] == str(customer) and planned["rule"] == "invalid_customers"
    assert planned["reason"].startswith("status INVALID since ")
    assert await scratch.candidates() == []
    for who in ("auditor", "sales"):
        refused = await api.post(scratch.slug, scratch.tokens[who], preview)
        assert refused.codes == ["FORBIDDEN"], who
