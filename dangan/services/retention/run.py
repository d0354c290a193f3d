"""A retention run of one tenant: leftovers first, then mark, then purge.

1. Attachment files still queued by an earlier run (a crash after its commit) are
   removed from S3.
2. Mark (one transaction, :mod:`.marking`): new candidates, unmarked ones, and a
   ``retention.mark`` audit event naming the customers newly marked.
3. Purge (:mod:`.destruction`): each due group in a transaction of its own, each
   destruction with its record and ``purge.destroy`` event; its files are removed once it
   has committed.

The clock (``as_of``) is now, unless an operator gives another (``dangan purge run
--now``, to see what a date would bring, or to run a walkthrough without waiting out
the grace period); every record says which clock it was destroyed by. Safe to run
twice, and alongside itself: marking takes a per-tenant lock, each destruction locks
what it destroys and checks again. A dry run is one read-only transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dangan.authz.retention import check_retention_right
from dangan.services.callers import Caller
from dangan.services.retention.destruction import (
    DueGroup,
    GroupOutcome,
    Purger,
    destroy_group,
    due_groups,
)
from dangan.services.retention.marking import CandidateLine, MarkOutcome, mark_candidates
from dangan.services.retention.objects import remove_queued_objects
from dangan.services.retention.rules import load_rules
from dangan.storage import ObjectStore
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

MARK_ACTION = "retention.mark"
RUN_ACTION = "retention.run"
# The schema version that holds the retention tables (dangan.tenants.ddl.retention).
RETENTION_VERSION = 13
Progress = Callable[[int, int], Awaitable[None]]


@dataclass
class RetentionReport:
    tenant: str
    as_of: datetime
    dry_run: bool
    marked: list[CandidateLine] = field(default_factory=list)
    unmarked: list[CandidateLine] = field(default_factory=list)
    destructions: list[GroupOutcome] = field(default_factory=list)  # destroyed (or would be)
    waiting: list[CandidateLine] = field(default_factory=list)  # due, awaiting approval
    objects_removed: int = 0
    objects_failed: int = 0  # left queued for the next run

    def add(self, outcome: GroupOutcome) -> None:
        self.unmarked += outcome.unmarked
        self.waiting += outcome.waiting
        if outcome.status in ("destroyed", "would_destroy"):
            self.destructions.append(outcome)


def retention_ready(tenant: TenantRef) -> bool:
    """Whether the tenant's schema has the retention tables yet."""
    return tenant.schema_version >= RETENTION_VERSION


async def plan_retention(tenant_slug: str, as_of: datetime) -> RetentionReport:
    """What a run at ``as_of`` would mark, unmark and destroy, read in the open
    transaction without changing anything (the dry run, and ``retentionPreview``)."""
    rules = await load_rules()
    report = RetentionReport(tenant=tenant_slug, as_of=as_of, dry_run=True)
    marking = await mark_candidates(list(rules.values()), as_of, dry_run=True)
    report.marked, report.unmarked = marking.marked, marking.unmarked
    for group in await due_groups(rules, as_of):
        report.add(await destroy_group(group, as_of, None, dry_run=True))
    return report


async def _mark(as_of: datetime, purger: Purger) -> MarkOutcome:
    """Phase 1 with its audit event, in the open transaction (one run at a time)."""
    await raw_connection().execute(
        "SELECT pg_advisory_xact_lock(hashtext('dangan-retention:' || current_schema()))"
    )
    outcome = await mark_candidates(list((await load_rules()).values()), as_of, dry_run=False)
    if outcome.marked or outcome.unmarked:
        await purger.log.record(
            MARK_ACTION,
            details={
                "asOf": as_of.isoformat(),
                "marked": dict(Counter(line.rule for line in outcome.marked)),
                "unmarked": dict(Counter(line.rule for line in outcome.unmarked)),
            },
            customers=sorted({line.customer_id for line in outcome.marked if line.customer_id}),
        )
    return outcome


async def run_retention(
    tenant: TenantRef,
    objects: ObjectStore,
    purger: Purger,
    *,
    as_of: datetime | None = None,
    dry_run: bool = False,
    on_progress: Progress | None = None,
) -> RetentionReport:
    """Run both phases for ``tenant`` (see the module's docstring); returns what was
    marked, unmarked, destroyed and left waiting for an approval."""
    clock = as_of or datetime.now(UTC)
    if dry_run:

        async def plan() -> RetentionReport:
            await raw_connection().execute("SET LOCAL transaction_read_only = on")
            return await plan_retention(tenant.slug, clock)

        return await run_in_tenant(tenant, plan)
    report = RetentionReport(tenant=tenant.slug, as_of=clock, dry_run=False)
    try:
        leftovers = await remove_queued_objects(tenant, objects)
        report.objects_removed, report.objects_failed = leftovers.removed, leftovers.failed
        marking = await run_in_tenant(tenant, lambda: _mark(clock, purger))
        report.marked, report.unmarked = marking.marked, marking.unmarked

        async def due_now() -> list[DueGroup]:
            return await due_groups(await load_rules(), clock)

        due = await run_in_tenant(tenant, due_now)
        for done, group in enumerate(due, start=1):

            async def destroy(group: DueGroup = group) -> GroupOutcome:
                return await destroy_group(
                    group, clock, purger, dry_run=False, operator_clock=as_of is not None
                )

            outcome = await run_in_tenant(tenant, destroy)
            report.add(outcome)
            if outcome.record_id is not None and outcome.objects_queued:
                removal = await remove_queued_objects(tenant, objects, outcome.record_id)
                report.objects_removed += removal.removed
                report.objects_failed += removal.failed
            if on_progress is not None:
                await on_progress(done, len(due))
    except Exception as exc:
        await purger.log.record_failure(
            tenant, RUN_ACTION, exc, details={"asOf": clock.isoformat()}
        )
        raise
    return report


async def retention_preview(caller: Caller) -> RetentionReport:
    """What a run now would mark, unmark and destroy (whoever the policy's
    ``can_manage_retention`` allows), read in the request's transaction."""
    await check_retention_right(caller, "can_manage_retention")
    return await plan_retention(caller.tenant_slug, datetime.now(UTC))
