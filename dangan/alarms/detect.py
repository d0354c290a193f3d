"""Which audit events set off which rule: the windows in Redis, the known addresses in
the tenant's ``alarm_known_address``.

Rules see people and apps by their id and anonymous callers (probing only) by their
client address; ``system`` events (cron jobs, operators' commands) set off nothing. They
watch what callers asked for — GraphQL requests, and those refused before they ran —
not what jobs did on their behalf (an approved export's rows are not a bulk read of its
requester's), except ``dangan customers export``, which is asked for at a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from dangan.alarms.config import WorkingHours
from dangan.alarms.rules import PROBE_CODES, AlarmRule
from dangan.alarms.windows import WindowBatch, window_key
from dangan.tenants.scope import raw_connection

REQUESTS = frozenset({"query", "mutation"})
# Requests, and those turned away before they ran (401/403/400).
ASKED = REQUESTS | {"refused"}
EXPORT_ACTIONS = frozenset({"startCustomerExport"})


@dataclass(frozen=True)
class Event:
    """An audit event as the rules read it."""

    seq: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    client_address: str | None
    operation_type: str
    operation_name: str | None
    actions: tuple[str, ...]
    error_codes: tuple[str, ...]
    customers: bytes

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(
            seq=row["seq"],
            at=row["at"],
            actor_kind=row["actor_kind"],
            actor_id=row["actor_id"],
            actor_name=row["actor_name"],
            client_address=row["client_address"],
            operation_type=row["operation_type"],
            operation_name=row["operation_name"],
            actions=tuple(row["actions"]),
            error_codes=tuple(row["error_codes"]),
            customers=bytes(row["customers"]),
        )

    @property
    def credential(self) -> str | None:
        """``user:<id>`` or ``app:<id>``: the person or app that acted, if any."""
        if self.actor_kind in ("user", "app") and self.actor_id is not None:
            return f"{self.actor_kind}:{self.actor_id}"
        return None

    @property
    def actor_key(self) -> str | None:
        """Whom a rule counts against: the credential, or an anonymous caller's address."""
        if self.actor_kind == "anonymous" and self.client_address:
            return f"address:{self.client_address}"
        return self.credential


@dataclass
class Trigger:
    """One event that set off a rule: ``observed`` is the window's count at that event."""

    rule: str
    event: Event
    observed: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _members(rule: str, event: Event, hours: WorkingHours) -> dict[bytes, float] | None:
    """What ``event`` adds to ``rule``'s window of its actor (None: nothing)."""
    at = event.at.timestamp()
    if event.operation_type not in ASKED and rule != "export_spike":
        return None
    if rule == "bulk_read":
        if event.credential is None or not event.customers:
            return None
        ids = event.customers
        return {ids[i : i + 16]: at for i in range(0, len(ids), 16)}
    counted = False
    if rule == "probing":
        counted = event.actor_key is not None and bool(PROBE_CODES.intersection(event.error_codes))
    elif rule == "reveal_burst":
        counted = event.credential is not None and "revealField" in event.actions
    elif rule == "export_spike":
        # Exports asked for through the API, and those run by `dangan customers export`.
        counted = event.credential is not None and (
            bool(EXPORT_ACTIONS.intersection(event.actions))
            or (event.operation_type == "cli" and "export.run" in event.actions)
        )
    elif rule == "off_hours":
        counted = (
            event.actor_kind == "user"
            and event.operation_type in REQUESTS
            and not hours.contains(event.at)
        )
    return {str(event.seq).encode(): at} if counted else None


async def window_triggers(
    events: Sequence[Event],
    rules: dict[str, AlarmRule],
    hours: WorkingHours,
    redis: Redis,
    namespace: str,
    tenant_id: int,
) -> list[Trigger]:
    """Feed the events to the windows of the enabled windowed rules, in order; the
    events after which a window holds more than its rule's threshold."""
    active = [
        rule
        for rule in rules.values()
        if rule.enabled and rule.threshold is not None and rule.window_minutes
    ]
    batch = WindowBatch(redis)
    pending: list[tuple[AlarmRule, Event]] = []
    for event in events:
        for rule in active:
            members = _members(rule.rule, event, hours)
            if members is None:
                continue
            actor_key = event.actor_key
            assert actor_key is not None
            key = window_key(namespace, tenant_id, rule.rule, actor_key)
            batch.add(key, members, event.at.timestamp(), rule.window_seconds)
            pending.append((rule, event))
    triggers = []
    for (rule, event), count in zip(pending, await batch.counts(), strict=True):
        assert rule.threshold is not None
        if count > rule.threshold:
            triggers.append(Trigger(rule.rule, event, observed=count))
    return triggers


async def new_address_triggers(events: Sequence[Event], rule: AlarmRule | None) -> list[Trigger]:
    """Learn the addresses each credential is used from; with the rule enabled, the
    events that used one from an address new to it — not its very first use."""
    used = [
        e
        for e in events
        if e.credential is not None and e.client_address and e.operation_type in ASKED
    ]
    if not used:
        return []
    actors = sorted({(e.actor_kind, e.actor_id) for e in used}, key=str)
    rows = await raw_connection().fetch(
        "SELECT actor_kind, actor_id, client_address FROM alarm_known_address"
        " WHERE (actor_kind, actor_id) IN"
        " (SELECT * FROM unnest($1::text[], $2::int[]))",
        [kind for kind, _ in actors],
        [ident for _, ident in actors],
    )
    known: dict[tuple[str, int | None], set[str]] = {actor: set() for actor in actors}
    for row in rows:
        known[row["actor_kind"], row["actor_id"]].add(row["client_address"])
    triggers = []
    first: dict[tuple[str, int | None, str], Event] = {}
    last_at: dict[tuple[str, int | None, str], datetime] = {}
    for event in used:
        address = event.client_address
        assert address is not None
        addresses = known[event.actor_kind, event.actor_id]
        if addresses and address not in addresses and rule is not None and rule.enabled:
            details = {"address": address, "knownAddresses": sorted(addresses)[:20]}
            triggers.append(Trigger("new_address", event, details=details))
        addresses.add(address)
        key = (event.actor_kind, event.actor_id, address)
        first.setdefault(key, event)
        last_at[key] = max(last_at.get(key, event.at), event.at)
    await raw_connection().executemany(
        "INSERT INTO alarm_known_address (actor_kind, actor_id, client_address, first_seen_at,"
        " last_seen_at, first_seq) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (actor_kind, actor_id, client_address)"
        " DO UPDATE SET last_seen_at = greatest(alarm_known_address.last_seen_at, $5)",
        [(*key, event.at, last_at[key], event.seq) for key, event in first.items()],
    )
    return triggers
