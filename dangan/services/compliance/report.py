"""The compliance report (合规审查) of one tenant for one period, built from independent
sections.

Each section is a small module with one async function (period → a dataclass with a
``tables()`` method): what the activity was by role and by actor, changes and approvals,
exports, shares, reveals, alerts, policy changes, backups, retention purges and legal
holds, and the audit chain verified now. They run one after another inside the open
tenant transaction, so nothing outside the tenant's schema is ever read. To add a
section: write its module, add a field to :class:`ComplianceReport` and to
:meth:`sections`, one line in :func:`build_report`, and its GraphQL type — the CSV and
the printable page follow from ``tables()``.

The report holds counts and the names of staff, apps and fields — never a customer's
data, a share's purpose, a reveal's reason or an export's conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dangan.audit.checkpoints import CheckpointStore
from dangan.authz.reports import check_compliance_reader
from dangan.services.callers import Caller
from dangan.services.compliance.activity import ActivitySection, activity_section
from dangan.services.compliance.alerts import AlertSection, alerts_section
from dangan.services.compliance.backups import BackupSection, backup_section
from dangan.services.compliance.integrity import ChainSection, chain_section
from dangan.services.compliance.period import Period, check_period
from dangan.services.compliance.policy_changes import PolicySection, policy_section
from dangan.services.compliance.retention import RetentionSection, retention_section
from dangan.services.compliance.tables import Table
from dangan.services.compliance.workflows import (
    ChangeCounts,
    ExportCounts,
    RevealSection,
    ShareCounts,
    changes_section,
    exports_section,
    reveals_section,
    shares_section,
)
from dangan.tenants.scope import TenantRef, current_tenant


class Section(Protocol):
    def tables(self) -> list[Table]: ...


@dataclass(frozen=True)
class ReportHeader:
    tenant: str  # slug
    tenant_name: str
    period_from: datetime
    period_to: datetime  # excluded
    generated_at: datetime
    generated_by: str


@dataclass(frozen=True)
class ComplianceReport:
    header: ReportHeader
    activity: ActivitySection
    changes: ChangeCounts
    exports: ExportCounts
    shares: ShareCounts
    reveals: RevealSection
    alerts: AlertSection
    policies: PolicySection
    backups: BackupSection
    retention: RetentionSection
    audit_chain: ChainSection

    def sections(self) -> list[Section]:
        """The sections in the order the CSV and the printable page show them."""
        return [
            self.audit_chain,
            self.activity,
            self.changes,
            self.exports,
            self.shares,
            self.reveals,
            self.alerts,
            self.policies,
            self.backups,
            self.retention,
        ]

    def tables(self) -> list[Table]:
        return [table for section in self.sections() for table in section.tables()]


async def build_report(
    tenant: TenantRef, period: Period, checkpoints: CheckpointStore, generated_by: str
) -> ComplianceReport:
    """Every section for ``period``, inside ``tenant``'s open transaction (no authorization
    here: :func:`compliance_report` checks the caller; commands run as the operator)."""
    header = ReportHeader(
        tenant=tenant.slug,
        tenant_name=tenant.name,
        period_from=period.start,
        period_to=period.end,
        generated_at=datetime.now(UTC),
        generated_by=generated_by,
    )
    return ComplianceReport(
        header=header,
        activity=await activity_section(period),
        changes=await changes_section(period),
        exports=await exports_section(period),
        shares=await shares_section(period),
        reveals=await reveals_section(period),
        alerts=await alerts_section(period),
        policies=await policy_section(period),
        backups=await backup_section(period),
        retention=await retention_section(period),
        audit_chain=await chain_section(checkpoints),
    )


def describe_caller(caller: Caller) -> str:
    """Who generated a report, as it says on it."""
    roles = "+".join(sorted(caller.roles)) or "no role"
    email = f" <{caller.email}>" if caller.email else ""
    return f"{caller.name}{email} ({roles})"


async def compliance_report(
    caller: Caller, start: datetime, end: datetime, checkpoints: CheckpointStore
) -> ComplianceReport:
    """The report of the caller's tenant for ``[start, end)``, if the policy's
    ``can_read_compliance_report`` lets them read it (FORBIDDEN otherwise); the period
    is checked (BAD_USER_INPUT naming the field)."""
    await check_compliance_reader(caller)
    period = check_period(start, end)
    tenant = current_tenant()
    return await build_report(tenant, period, checkpoints, describe_caller(caller))
