"""GraphQL shapes of access alarms: alerts, their webhook deliveries, rules, settings."""

from __future__ import annotations

from datetime import datetime, time
from enum import Enum
from typing import Any, NewType

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from dangan.alarms.config import AlarmSettings as AlarmSettingsValues
from dangan.alarms.rules import AlarmRule as AlarmRuleValues
from dangan.settings import Settings

# Audit event numbers are bigint: GraphQL's Int stops at 2^31.
Long = strawberry.scalar(
    NewType("Long", int),
    serialize=int,
    parse_value=int,
    description="A 64-bit integer (audit event numbers)",
)


@strawberry.enum
class AlertSeverity(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@strawberry.enum
class AlertStatus(Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


@strawberry.type(description="One attempt to POST an alert to the webhook")
class AlertDelivery:
    attempt: int
    url: str = strawberry.field(description="Without user info or query string")
    attempted_at: datetime
    status_code: int | None
    error: str | None
    outcome: str = strawberry.field(description="delivered, retrying or failed")

    @classmethod
    def from_row(cls, row: Any) -> AlertDelivery:
        return cls(**{name: row[name] for name in cls.__annotations__})


@strawberry.type(
    description="报警: an access alarm raised by a rule about one person, app or address"
)
class Alert:
    id: int
    rule: str
    severity: AlertSeverity
    status: AlertStatus
    actor_kind: str = strawberry.field(
        description="user, app, anonymous (by address), or system (a failed backup)"
    )
    actor_id: int | None
    actor_name: str | None
    client_address: str | None = strawberry.field(description="The latest address seen")
    summary: str
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int = strawberry.field(description="Events that set the rule off")
    first_seq: int = strawberry.field(
        graphql_type=Long, description="First audit event (audit_event.seq)"
    )
    last_seq: int = strawberry.field(graphql_type=Long)
    evidence: JSON = strawberry.field(
        description="threshold, windowMinutes, observed (highest count), events (audit seq"
        " numbers, latest 50), addresses, operations, firstAt, lastAt, details"
    )
    suspended: bool = strawberry.field(description="This alert suspended its actor")
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    acknowledge_note: str | None
    closed_at: datetime | None
    closed_by: int | None
    close_reason: str | None
    reinstated_at: datetime | None
    reinstated_by: int | None
    reinstate_reason: str | None

    @strawberry.field(description="Whether the actor is still suspended by this alert")
    def suspension_active(self) -> bool:
        return self.suspended and self.reinstated_at is None

    @strawberry.field(description="Webhook attempts, oldest first")
    async def deliveries(self, info: Info) -> list[AlertDelivery]:
        rows = await info.context.alert_deliveries.load(self.id)
        return [AlertDelivery.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        values = {name: row[name] for name in cls.__annotations__}
        values["severity"] = AlertSeverity(row["severity"])
        values["status"] = AlertStatus(row["status"])
        evidence = row["evidence"]
        values["evidence"] = orjson.loads(evidence) if isinstance(evidence, str) else evidence
        return cls(**values)


@strawberry.type(description="An alarm rule: what it watches, its threshold and window")
class AlarmRule:
    rule: str
    description: str
    enabled: bool
    threshold: int | None = strawberry.field(description="Alarm when the count exceeds it")
    window_minutes: int | None
    severity: AlertSeverity
    suspend: bool = strawberry.field(
        description="An alert of this rule suspends the actor's credential until reinstated"
    )
    updated_by: int | None
    updated_at: datetime

    @classmethod
    def from_rule(cls, rule: AlarmRuleValues) -> AlarmRule:
        return cls(
            rule=rule.rule,
            description=rule.description,
            enabled=rule.enabled,
            threshold=rule.threshold,
            window_minutes=rule.window_minutes,
            severity=AlertSeverity(rule.severity),
            suspend=rule.suspend,
            updated_by=rule.updated_by,
            updated_at=rule.updated_at,
        )


@strawberry.type(description="When people are expected to work (the off_hours rule)")
class WorkingHours:
    starts: time
    ends: time = strawberry.field(description="Before starts: the hours run past midnight")
    days: list[int] = strawberry.field(description="ISO weekdays: 1 = Monday … 7 = Sunday")
    time_zone: str


@strawberry.type
class AlarmSettings:
    webhook_url: str | None = strawberry.field(description="The tenant's own webhook")
    webhook_secret_set: bool
    default_webhook: bool = strawberry.field(
        description="Alerts go to the operator's webhook (the tenant has none of its own)"
    )
    working_hours: WorkingHours
    updated_by: int | None
    updated_at: datetime

    @classmethod
    def from_values(cls, values: AlarmSettingsValues, settings: Settings) -> AlarmSettings:
        target = values.webhook(settings)
        hours = values.hours
        return cls(
            webhook_url=values.webhook_url,
            webhook_secret_set=values.webhook_secret is not None,
            default_webhook=target is not None and not target[2],
            working_hours=WorkingHours(
                starts=hours.starts,
                ends=hours.ends,
                days=list(hours.days),
                time_zone=hours.time_zone,
            ),
            updated_by=values.updated_by,
            updated_at=values.updated_at,
        )


@strawberry.type
class AlarmSettingsResult:
    settings: AlarmSettings
    webhook_secret: str | None = strawberry.field(
        description="The webhook's new signing secret: shown this once, keep it"
    )


@strawberry.input
class AlertFilter:
    status: AlertStatus | None = None
    severity: AlertSeverity | None = None
    rule: str | None = None
    opened_from: datetime | None = strawberry.field(default=None, description="Inclusive")
    opened_to: datetime | None = strawberry.field(default=None, description="Exclusive")


@strawberry.input
class AlarmRuleInput:
    enabled: bool | None = None
    threshold: int | None = None
    window_minutes: int | None = None
    severity: AlertSeverity | None = None
    suspend: bool | None = None


@strawberry.input
class WorkingHoursInput:
    starts: time
    ends: time
    days: list[int]
    time_zone: str = "Asia/Shanghai"


@strawberry.input
class AlarmSettingsInput:
    webhook_url: str | None = strawberry.field(
        default=strawberry.UNSET, description="null: use the operator's webhook; omit: keep"
    )
    working_hours: WorkingHoursInput | None = None
    new_webhook_secret: bool = strawberry.field(
        default=False, description="Make a new signing secret (shown once)"
    )
