"""合规审查 through the API: ``complianceReport(from, to)`` (typed sections) and
``exportComplianceReport(from, to, format)`` (a JSON, CSV or printable HTML file in S3,
with a short-lived link). Who may: the policy's ``can_read_compliance_report``."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types import Info

from dangan.audit.checkpoints import CheckpointStore, open_checkpoint_store
from dangan.services import compliance

T = TypeVar("T")
From = Annotated[datetime, strawberry.argument(name="from", description="Start, included")]
To = Annotated[datetime, strawberry.argument(description="End, excluded (at most 366 days on)")]


@strawberry.enum
class ComplianceReportFormat(Enum):
    JSON = "JSON"
    CSV = "CSV"
    HTML = "HTML"


@strawberry.type(description="What one role (or actor, or everyone) did in the period")
class ComplianceActivityCounts:
    actor_kind: str | None = strawberry.field(
        description="user, app, system or anonymous; null: everyone"
    )
    role: str | None = strawberry.field(
        description="The roles a person held, joined by + (admin+auditor); null: not a person"
    )
    actor_id: int | None
    actor_name: str | None
    events: int = strawberry.field(description="Requests (and job runs) recorded")
    reads: int = strawberry.field(description="Queries that returned customers")
    customer_rows_read: int = strawberry.field(description="Customers returned, per query")
    customers_read: int = strawberry.field(description="Distinct customers returned")
    changes_applied: int
    changes_submitted: int = strawberry.field(description="Changes written to wait for approval")
    changes_approved: int
    changes_rejected: int
    changes_withdrawn: int
    exports_requested: int
    exports_approved: int
    exports_rejected: int
    shares_requested: int
    shares_approved: int
    shares_rejected: int
    shares_revoked: int
    reveals: int = strawberry.field(description="Masked values revealed in full")
    refused: int = strawberry.field(description="Requests turned away before they ran")
    forbidden: int
    unauthenticated: int
    errors: int


@strawberry.type
class ComplianceActivity:
    by_role: list[ComplianceActivityCounts]
    by_actor: list[ComplianceActivityCounts]
    total: ComplianceActivityCounts


@strawberry.type(description="Change records made and decided in the period")
class ComplianceChangeCounts:
    recorded: int
    applied: int
    submitted: int
    still_pending: int
    approved: int
    rejected: int
    withdrawn: int
    pending_now: int = strawberry.field(description="Waiting for approval now, whenever made")


@strawberry.type(description="Customer exports in the period")
class ComplianceExportCounts:
    requested: int
    needed_approval: int
    awaiting_approval: int
    approved: int
    rejected: int
    completed: int
    failed: int
    rows_exported: int


@strawberry.type(description="Shares and loans in the period")
class ComplianceShareCounts:
    requested: int
    approved: int
    rejected: int
    revoked: int
    expired: int
    approved_for_people: int
    approved_for_departments: int
    approved_for_apps: int
    customers_shared: int
    active_now: int


@strawberry.type
class ComplianceRevealCount:
    field_class: str
    field: str
    reveals: int
    customers: int
    actors: int


@strawberry.type(description="Reveals of masked values in the period, by field")
class ComplianceReveals:
    by_field: list[ComplianceRevealCount]
    total: int


@strawberry.type(description="Alerts opened in the period, by rule and severity")
class ComplianceAlertRuleCount:
    rule: str
    severity: str
    opened: int
    open_now: int
    acknowledged_now: int
    closed_now: int
    suspensions: int = strawberry.field(description="Alerts that suspended a credential")


@strawberry.type(description="An alert opened in the period, as it stands now")
class ComplianceAlert:
    id: int
    rule: str
    severity: str
    status: str
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    opened_at: datetime
    occurrences: int
    suspended: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    closed_by: str | None


@strawberry.type(description="Alerts: opened and closed in the period, open at its end")
class ComplianceAlerts:
    opened: int
    closed: int
    open_at_end: int
    by_rule: list[ComplianceAlertRuleCount]
    alerts: list[ComplianceAlert]


@strawberry.type
class CompliancePolicyChange:
    version: int
    status: str
    proposed_by_id: int
    proposed_by: str | None
    proposed_at: datetime
    activated_by_id: int | None
    activated_by: str | None
    activated_at: datetime | None


@strawberry.type
class CompliancePolicies:
    active_version: int | None = strawberry.field(description="Null: the shipped default")
    changes: list[CompliancePolicyChange]


@strawberry.type(description="The audit chain verified now, against its S3 checkpoints")
class ComplianceAuditChain:
    ok: bool
    events_verified: int
    head_seq: int
    broken_seq: int | None
    problem: str | None
    message: str | None
    checkpoints: int
    last_checkpoint_seq: int | None
    verified_at: datetime


@strawberry.type(description="备份: backups of the tenant in the period, from the catalogue")
class ComplianceBackups:
    catalogued: bool = strawberry.field(description="False: no backup catalogue to report from")
    note: str
    made: int = strawberry.field(description="Backups finished in the period")
    scheduled: int
    stored_bytes: float = strawberry.field(description="Bytes stored (sealed) by those backups")
    failed_runs: int
    last_failure: str | None = strawberry.field(description="Why the last failed run failed")
    verified: int = strawberry.field(description="Backups verified in the period")
    verify_failed: int
    drilled: int = strawberry.field(description="Restore drills run in the period")
    drill_failed: int
    restores: int = strawberry.field(description="Restores of this tenant in the period")
    last_good_id: str | None
    last_good_at: datetime | None
    last_good_age_hours: float | None = strawberry.field(
        description="Hours from the last good backup to the period's end"
    )


@strawberry.type(description="One retention rule's destructions and candidates")
class ComplianceRetentionRule:
    rule: str
    destructions: int = strawberry.field(description="Destruction records written")
    records_destroyed: int = strawberry.field(
        description="Customers, communications or share requests destroyed"
    )
    approved: int = strawberry.field(description="Destructions approved before they ran")
    operator_clock: int = strawberry.field(
        description="Destructions run with an operator's clock (dangan purge run --now)"
    )
    marked: int
    unmarked: int
    pending_now: int
    awaiting_approval_now: int


@strawberry.type(description="定期清理: retention purges and legal holds")
class ComplianceRetention:
    by_rule: list[ComplianceRetentionRule]
    holds_placed: int
    holds_released: int
    holds_active_at_end: int
    files_pending_now: int = strawberry.field(
        description="Attachment files of destroyed customers still to remove from S3"
    )


@strawberry.type(description="合规审查: counts and names of staff and fields, never customer data")
class ComplianceReport:
    tenant: str
    tenant_name: str
    period_from: datetime
    period_to: datetime
    generated_at: datetime
    generated_by: str
    activity: ComplianceActivity
    changes: ComplianceChangeCounts
    exports: ComplianceExportCounts
    shares: ComplianceShareCounts
    reveals: ComplianceReveals
    alerts: ComplianceAlerts
    policies: CompliancePolicies
    backups: ComplianceBackups
    retention: ComplianceRetention
    audit_chain: ComplianceAuditChain

    @classmethod
    def from_report(cls, report: compliance.ComplianceReport) -> ComplianceReport:
        activity = report.activity
        return cls(
            **_fields(report.header),
            activity=ComplianceActivity(
                by_role=[_copy(ComplianceActivityCounts, c) for c in activity.by_role],
                by_actor=[_copy(ComplianceActivityCounts, c) for c in activity.by_actor],
                total=_copy(ComplianceActivityCounts, activity.total),
            ),
            changes=_copy(ComplianceChangeCounts, report.changes),
            exports=_copy(ComplianceExportCounts, report.exports),
            shares=_copy(ComplianceShareCounts, report.shares),
            reveals=ComplianceReveals(
                by_field=[_copy(ComplianceRevealCount, r) for r in report.reveals.by_field],
                total=report.reveals.total,
            ),
            alerts=ComplianceAlerts(
                opened=report.alerts.opened,
                closed=report.alerts.closed,
                open_at_end=report.alerts.open_at_end,
                by_rule=[_copy(ComplianceAlertRuleCount, r) for r in report.alerts.by_rule],
                alerts=[_copy(ComplianceAlert, a) for a in report.alerts.alerts],
            ),
            policies=CompliancePolicies(
                active_version=report.policies.active_version,
                changes=[_copy(CompliancePolicyChange, c) for c in report.policies.changes],
            ),
            backups=_copy(ComplianceBackups, report.backups),
            retention=ComplianceRetention(
                by_rule=[_copy(ComplianceRetentionRule, r) for r in report.retention.by_rule],
                holds_placed=report.retention.holds_placed,
                holds_released=report.retention.holds_released,
                holds_active_at_end=report.retention.holds_active_at_end,
                files_pending_now=report.retention.files_pending_now,
            ),
            audit_chain=_copy(ComplianceAuditChain, report.audit_chain),
        )


@strawberry.type(description="A report file in S3 and a short-lived link to it")
class ComplianceReportFile:
    format: ComplianceReportFormat
    filename: str
    url: str
    expires_at: datetime
    size: int = strawberry.field(description="Bytes")


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _copy(cls: type[T], value: Any) -> T:
    """A GraphQL type from the service's dataclass of the same field names."""
    return cls(**_fields(value))


async def _checkpoints(info: Info) -> CheckpointStore:
    context = info.context
    return await open_checkpoint_store(context.objects.client, context.settings)


async def compliance_report(info: Info, from_: From, to: To) -> ComplianceReport:
    """The tenant's compliance report for [from, to): activity by role and actor,
    approvals, exports, shares, reveals, alerts, policy changes, backups, retention
    purges and legal holds, the audit chain."""
    caller = info.context.require_caller()
    report = await compliance.compliance_report(caller, from_, to, await _checkpoints(info))
    return ComplianceReport.from_report(report)


async def export_compliance_report(
    info: Info, from_: From, to: To, format: ComplianceReportFormat
) -> ComplianceReportFile:
    """The same report as a file (JSON, CSV or a printable HTML page) and a link to it."""
    context = info.context
    saved = await compliance.export_compliance_report(
        context.require_caller(),
        from_,
        to,
        format.value,
        checkpoints=await _checkpoints(info),
        objects=context.objects,
        expires=timedelta(seconds=context.settings.archive_download_seconds),
    )
    return ComplianceReportFile(
        format=ComplianceReportFormat(saved.format),
        filename=saved.filename,
        url=saved.url,
        expires_at=saved.expires_at,
        size=saved.size,
    )
