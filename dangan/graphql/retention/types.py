"""GraphQL shapes of retention purges: rules, candidates (the owners' notices), legal
holds, destruction records and the preview of a run."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from dangan.graphql.alarms.types import Long
from dangan.services import retention


@strawberry.enum
class RetentionCandidateStatus(Enum):
    MARKED = "marked"
    UNMARKED = "unmarked"


@strawberry.type(
    description="定期清理: a retention rule — what it destroys, when, with what notice"
)
class RetentionRule:
    rule: str = strawberry.field(
        description="invalid_customers, inactive_potential_customers, communication_records"
        " or expired_share_grants"
    )
    description: str
    record_type: str = strawberry.field(description="customer, communication or share_request")
    enabled: bool
    retention_months: int = strawberry.field(description="Kept this long before it is marked")
    grace_days: int = strawberry.field(
        description="Notice between marking and destruction (7 to 365 days)"
    )
    requires_approval: bool = strawberry.field(
        description="Nothing is destroyed before approveRetentionCandidates"
    )
    updated_by: int | None
    updated_at: datetime

    @classmethod
    def from_rule(cls, rule: retention.RetentionRule) -> RetentionRule:
        return cls(
            rule=rule.rule,
            description=rule.description,
            record_type=rule.spec.record_type,
            enabled=rule.enabled,
            retention_months=rule.retention_months,
            grace_days=rule.grace_days,
            requires_approval=rule.requires_approval,
            updated_by=rule.updated_by,
            updated_at=rule.updated_at,
        )


@strawberry.input
class RetentionRuleInput:
    enabled: bool | None = None
    retention_months: int | None = None
    grace_days: int | None = None
    requires_approval: bool | None = None


@strawberry.type(
    description="A record a retention rule marked for destruction on dueAt (the owner's notice)"
)
class RetentionCandidate:
    id: strawberry.ID
    rule: str
    record_type: str = strawberry.field(description="customer, communication or share_request")
    record_id: strawberry.ID
    customer_id: strawberry.ID | None = strawberry.field(description="None for a share request")
    owner_id: int | None = strawberry.field(
        description="Who it was marked for: the customer's owner, or the share's requester"
    )
    reason: str
    basis_at: datetime = strawberry.field(description="The date the rule counts from")
    marked_at: datetime
    due_at: datetime = strawberry.field(description="Destroyed from then on, if still due")
    status: RetentionCandidateStatus
    requires_approval: bool
    approved_by: int | None
    approved_by_name: str | None
    approved_at: datetime | None
    unmarked_at: datetime | None
    unmark_reason: str | None

    @classmethod
    def from_row(cls, row: Any) -> RetentionCandidate:
        values = {name: row[name] for name in cls.__annotations__}
        values["id"] = strawberry.ID(str(row["id"]))
        values["record_id"] = strawberry.ID(str(row["record_id"]))
        customer = row["customer_id"]
        values["customer_id"] = strawberry.ID(str(customer)) if customer else None
        values["status"] = RetentionCandidateStatus(row["status"])
        return cls(**values)


@strawberry.input
class RetentionCandidateFilter:
    rule: str | None = None
    status: RetentionCandidateStatus | None = None
    customer_id: strawberry.ID | None = None
    mine: bool = strawberry.field(
        default=False, description="Only the notices about customers you own"
    )


@strawberry.type(description="法律保全: a customer that must not be destroyed while it holds")
class LegalHold:
    id: strawberry.ID
    customer_id: strawberry.ID
    reason: str
    placed_by: int
    placed_by_name: str | None
    placed_at: datetime
    released_by: int | None
    released_by_name: str | None
    released_at: datetime | None
    release_reason: str | None

    @strawberry.field(description="Not released")
    def active(self) -> bool:
        return self.released_at is None

    @classmethod
    def from_row(cls, row: Any) -> LegalHold:
        values = {name: row[name] for name in cls.__annotations__}
        values["id"] = strawberry.ID(str(row["id"]))
        values["customer_id"] = strawberry.ID(str(row["customer_id"]))
        return cls(**values)


@strawberry.type(
    description="销毁登记: what a retention rule destroyed, why, approved by whom, when."
    " Cannot be edited; ids appear only as keyed hashes"
)
class DestructionRecord:
    id: strawberry.ID
    rule: str
    record_type: str = strawberry.field(description="customer, communication or share_request")
    reason: str
    counts: JSON = strawberry.field(description="Rows destroyed, by table")
    customer_hash: str | None = strawberry.field(description="hmac of the customer's id")
    subject_hashes: list[str] = strawberry.field(
        description="hmac of each id destroyed (customers, communications or share request)"
    )
    marked_at: datetime
    due_at: datetime
    approved_by: int | None
    approved_by_name: str | None
    approved_at: datetime | None
    as_of: datetime = strawberry.field(
        description="The clock the rules were read by: the run's start, or an operator's"
    )
    operator_clock: bool = strawberry.field(
        description="asOf was given by an operator (dangan purge run --now), not the time"
    )
    destroyed_at: datetime
    origin: str = strawberry.field(description="job (nightly) or cli (dangan purge run)")
    operator: str | None = strawberry.field(description="The command's operating-system user")
    record_hash: str = strawberry.field(description="sha256 of the record's content")
    audit_seq: int = strawberry.field(
        graphql_type=Long, description="The purge.destroy audit event written with it"
    )
    intact: bool | None = strawberry.field(
        description="The record matches its hash and the hash in its audit event (null: the"
        " event has been pruned, only its own hash was checked)"
    )
    objects_pending: int = strawberry.field(
        description="Attachment files still to remove from S3 (0 once they are gone)"
    )

    @classmethod
    def from_view(cls, view: retention.RecordView) -> DestructionRecord:
        values = {
            name: view.values[name]
            for name in cls.__annotations__
            if name not in ("intact", "objects_pending")
        }
        values["id"] = strawberry.ID(str(view.values["id"]))
        values["subject_hashes"] = list(view.values["subject_hashes"])
        return cls(**values, intact=view.check.intact, objects_pending=view.objects_pending)


@strawberry.input
class DestructionRecordFilter:
    since: datetime | None = strawberry.field(default=None, description="Destroyed at or after")
    until: datetime | None = strawberry.field(default=None, description="Destroyed before")
    rule: str | None = None
    for_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only records that destroyed this id (customer or record)"
    )


def _json(value: Any) -> JSON:
    """A plain value served as the JSON scalar."""
    served: JSON = value
    return served


@strawberry.type
class PlannedCandidate:
    rule: str
    record_type: str
    record_id: strawberry.ID
    customer_id: strawberry.ID | None
    reason: str
    due_at: datetime | None

    @classmethod
    def from_line(cls, line: retention.CandidateLine) -> PlannedCandidate:
        return cls(
            rule=line.rule,
            record_type=line.record_type,
            record_id=strawberry.ID(str(line.record_id)),
            customer_id=strawberry.ID(str(line.customer_id)) if line.customer_id else None,
            reason=line.reason,
            due_at=line.due_at,
        )


@strawberry.type(description="What one destroying transaction would destroy")
class PlannedDestruction:
    rule: str
    record_type: str
    records: list[PlannedCandidate]
    counts: JSON = strawberry.field(description="Rows that would go, by table")
    attachment_files: int


@strawberry.type(description="What a retention run now would do (nothing is changed)")
class RetentionPreview:
    as_of: datetime
    to_destroy: list[PlannedDestruction]
    to_mark: list[PlannedCandidate]
    to_unmark: list[PlannedCandidate] = strawberry.field(description="reason: why")
    awaiting_approval: list[PlannedCandidate]

    @classmethod
    def from_report(cls, report: retention.RetentionReport) -> RetentionPreview:
        return cls(
            as_of=report.as_of,
            to_destroy=[
                PlannedDestruction(
                    rule=outcome.group.rule.rule,
                    record_type=outcome.group.record_type,
                    records=[PlannedCandidate.from_line(line) for line in outcome.destroyed],
                    counts=_json(outcome.counts),
                    attachment_files=outcome.objects_queued,
                )
                for outcome in report.destructions
            ],
            to_mark=[PlannedCandidate.from_line(line) for line in report.marked],
            to_unmark=[PlannedCandidate.from_line(line) for line in report.unmarked],
            awaiting_approval=[PlannedCandidate.from_line(line) for line in report.waiting],
        )
