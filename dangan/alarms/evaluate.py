"""Evaluating a tenant's new audit events: tail the chain from the cursor, open alerts.

Each batch is one tenant transaction that locks ``alarm_cursor`` first, so evaluations
of one tenant (a request's signal, the cron sweep, two workers) take turns and each
event is evaluated once; the alerts it opens and the cursor's move commit together.
Audit events are numbered in commit order without gaps (the chain's head is locked
until commit), so everything after the cursor is there to read. The Redis windows
are not part of the transaction: a batch that fails after feeding them is evaluated
again, which counts nothing twice (see :mod:`dangan.alarms.windows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from redis.asyncio import Redis

from dangan.alarms.config import load_settings
from dangan.alarms.detect import Event, new_address_triggers, window_triggers
from dangan.alarms.opening import Opened, group, record_findings
from dangan.alarms.rules import load_rules
from dangan.alarms.suspension import Actor, desired_suspensions, sync_suspensions
from dangan.audit.actions import ActionLog
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant

BATCH_SIZE = 500
# The customer ids only when the bulk-read rule runs (a page of 1,000 is 16 kB).
_EVENTS = (
    "SELECT seq, at, actor_kind, actor_id, actor_name, client_address, operation_type,"
    " operation_name, actions, error_codes,"
    " CASE WHEN $3 THEN customers ELSE ''::bytea END AS customers"
    " FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT $2"
)


@dataclass
class Batch:
    events: int
    last_seq: int
    opened: list[Opened]
    suspensions: dict[Actor, int]


@dataclass
class Evaluation:
    tenant: str
    events: int = 0
    last_seq: int = 0
    opened: list[Opened] = field(default_factory=list)


async def _evaluate_batch(
    tenant: TenantRef, redis: Redis, namespace: str, batch_size: int, log: ActionLog | None
) -> Batch:
    session = raw_connection()
    cursor: int = await session.fetchval("SELECT last_seq FROM alarm_cursor FOR UPDATE")
    rules = await load_rules()
    bulk = rules.get("bulk_read")
    rows = await session.fetch(_EVENTS, cursor, batch_size, bool(bulk and bulk.enabled))
    events = [Event.from_row(row) for row in rows]
    opened: list[Opened] = []
    if events:
        hours = (await load_settings()).hours
        triggers = await window_triggers(events, rules, hours, redis, namespace, tenant.id)
        triggers += await new_address_triggers(events, rules.get("new_address"))
        opened = await record_findings(group(triggers), rules)
        if log is not None:
            # In the trail too, with the alert: its rows are the tenant's to edit.
            for alert in opened:
                details = {"alert": alert.id, "rule": alert.rule, "suspended": alert.suspended}
                await log.record("alert.open", details=details)
        cursor = events[-1].seq
        await session.execute("UPDATE alarm_cursor SET last_seq = $1, evaluated_at = now()", cursor)
    return Batch(len(events), cursor, opened, await desired_suspensions())


async def evaluate_tenant(
    tenant: TenantRef,
    redis: Redis,
    namespace: str,
    *,
    log: ActionLog | None = None,
    batch_size: int = BATCH_SIZE,
) -> Evaluation:
    """Evaluate every event after the cursor, batch by batch; then bring the platform's
    suspensions in line with the tenant's alerts. With ``log``, each alert opened is
    recorded in the audit trail (``alert.open``, as ``system``: it sets off no rule) in
    the transaction that opens it."""
    result = Evaluation(tenant.slug)
    while True:
        batch = await run_in_tenant(
            tenant, partial(_evaluate_batch, tenant, redis, namespace, batch_size, log)
        )
        result.events += batch.events
        result.last_seq = batch.last_seq
        result.opened += batch.opened
        await sync_suspensions(tenant, batch.suspensions)
        if batch.events < batch_size:
            return result
