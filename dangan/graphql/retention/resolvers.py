"""``retentionRules``, ``setRetentionRule``, ``retentionCandidates``,
``approveRetentionCandidates``, ``legalHolds``, ``placeLegalHold``, ``releaseLegalHold``,
``destructionRecords`` and ``retentionPreview``. Who may do what is the policy's
(``policies/retention.polar``)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.retention.types import (
    DestructionRecord,
    DestructionRecordFilter,
    LegalHold,
    RetentionCandidate,
    RetentionCandidateFilter,
    RetentionPreview,
    RetentionRule,
    RetentionRuleInput,
)
from dangan.services import retention


async def retention_rules(info: Info) -> list[RetentionRule]:
    """The tenant's retention rules (any member of staff)."""
    rules = await retention.retention_rules(info.context.require_caller())
    return [RetentionRule.from_rule(rule) for rule in rules]


async def set_retention_rule(info: Info, rule: str, input: RetentionRuleInput) -> RetentionRule:
    """Change a rule's switch, retention, notice or approval (can_manage_retention)."""
    changed = await retention.set_retention_rule(
        info.context.require_caller(),
        rule,
        enabled=input.enabled,
        retention_months=input.retention_months,
        grace_days=input.grace_days,
        requires_approval=input.requires_approval,
    )
    return RetentionRule.from_rule(changed)


async def retention_candidates(
    info: Info,
    filter: RetentionCandidateFilter | None = None,
    first: int = 100,
    offset: int = 0,
) -> list[RetentionCandidate]:
    """Records marked for destruction that you may see: all of them for compliance, the
    notices about your customers (and your share requests) otherwise; soonest due first."""
    flt = filter or RetentionCandidateFilter()
    rows = await retention.list_candidates(
        info.context.require_caller(),
        retention.CandidateFilter(
            rule=flt.rule,
            status=flt.status.value if flt.status else None,
            customer_id=str(flt.customer_id) if flt.customer_id is not None else None,
            mine=flt.mine,
        ),
        first=first,
        offset=offset,
    )
    return [RetentionCandidate.from_row(row) for row in rows]


async def approve_retention_candidates(
    info: Info, ids: list[strawberry.ID]
) -> list[RetentionCandidate]:
    """Approve the destruction of marked candidates (can_approve_purge)."""
    rows = await retention.approve_candidates(info.context.require_caller(), [str(i) for i in ids])
    return [RetentionCandidate.from_row(row) for row in rows]


async def legal_holds(
    info: Info,
    customer_id: strawberry.ID | None = None,
    active: bool | None = None,
    first: int = 100,
    offset: int = 0,
) -> list[LegalHold]:
    """Legal holds on customers you can see, newest first."""
    rows = await retention.legal_holds(
        info.context.require_caller(),
        customer_id=str(customer_id) if customer_id is not None else None,
        active=active,
        first=first,
        offset=offset,
    )
    return [LegalHold.from_row(row) for row in rows]


async def place_legal_hold(info: Info, customer_id: strawberry.ID, reason: str) -> LegalHold:
    """Keep a customer from destruction until released (can_manage_legal_holds)."""
    row = await retention.place_legal_hold(info.context.require_caller(), str(customer_id), reason)
    return LegalHold.from_row(row)


async def release_legal_hold(info: Info, id: strawberry.ID, reason: str) -> LegalHold:
    """Release a legal hold (can_manage_legal_holds)."""
    row = await retention.release_legal_hold(info.context.require_caller(), str(id), reason)
    return LegalHold.from_row(row)


async def destruction_records(
    info: Info,
    filter: DestructionRecordFilter | None = None,
    first: int = 100,
    offset: int = 0,
) -> list[DestructionRecord]:
    """The destruction records (销毁登记), newest first (can_read_destruction_records)."""
    flt = filter or DestructionRecordFilter()
    views = await retention.destruction_records(
        info.context.require_caller(),
        info.context.settings.secret_key,
        retention.RecordFilter(
            since=flt.since,
            until=flt.until,
            rule=flt.rule,
            for_id=str(flt.for_id) if flt.for_id is not None else None,
        ),
        first=first,
        offset=offset,
    )
    return [DestructionRecord.from_view(view) for view in views]


async def retention_preview(info: Info) -> RetentionPreview:
    """What a retention run now would mark, unmark and destroy (can_manage_retention);
    changes nothing."""
    report = await retention.retention_preview(info.context.require_caller())
    return RetentionPreview.from_report(report)
