"""Access alarms in the API: ``alerts``, ``alert``, ``acknowledgeAlert``, ``closeAlert``,
``reinstateActor``, ``alarmRules``, ``setAlarmRule``, ``alarmSettings``,
``setAlarmSettings``. Administrators and auditors read; administrators decide and
configure (dangan.authz.capabilities)."""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.types import Info

from dangan.alarms import alerts, config, rules
from dangan.alarms.suspension import Actor, lift_suspension
from dangan.graphql.alarms.types import (
    AlarmRule,
    AlarmRuleInput,
    AlarmSettings,
    AlarmSettingsInput,
    AlarmSettingsResult,
    Alert,
    AlertFilter,
)


async def alerts_list(
    info: Info, filter: AlertFilter | None = None, first: int = 50, before: int | None = None
) -> list[Alert]:
    """Alerts of your tenant, newest first; ``before``: the last id of the previous page."""
    flt = filter or AlertFilter()
    rows = await alerts.list_alerts(
        info.context.require_caller(),
        alerts.AlertFilter(
            status=flt.status.value if flt.status else None,
            severity=flt.severity.value if flt.severity else None,
            rule=flt.rule,
            opened_from=flt.opened_from,
            opened_to=flt.opened_to,
        ),
        first=first,
        before=before,
    )
    return [Alert.from_row(row) for row in rows]


async def alert(info: Info, id: int) -> Alert:
    return Alert.from_row(await alerts.get_alert(info.context.require_caller(), id))


async def acknowledge_alert(info: Info, id: int, note: str | None = None) -> Alert:
    """Say you are looking into it (administrators; not an alert about yourself)."""
    row = await alerts.acknowledge_alert(info.context.require_caller(), id, note)
    return Alert.from_row(row)


def _lift_after_commit(info: Info, actor: Actor | None) -> None:
    if actor is not None:
        info.context.after_commit.append(partial(lift_suspension, info.context.tenant, actor))


async def close_alert(info: Info, id: int, reason: str, reinstate: bool = False) -> Alert:
    """Close with a reason; ``reinstate: true`` also lifts the actor's suspension."""
    row, lifted = await alerts.close_alert(
        info.context.require_caller(), id, reason, reinstate=reinstate
    )
    _lift_after_commit(info, lifted)
    return Alert.from_row(row)


async def reinstate_actor(info: Info, alert_id: int, reason: str) -> Alert:
    """Lift the suspension of the alert's person or app (every alert suspending them)."""
    row, lifted = await alerts.reinstate_actor(info.context.require_caller(), alert_id, reason)
    _lift_after_commit(info, lifted)
    return Alert.from_row(row)


async def alarm_rules(info: Info) -> list[AlarmRule]:
    found = await rules.alarm_rules(info.context.require_caller())
    return [AlarmRule.from_rule(rule) for rule in found]


async def set_alarm_rule(info: Info, rule: str, input: AlarmRuleInput) -> AlarmRule:
    """Change a rule's switch, threshold, window, severity or suspension (administrators)."""
    changed = await rules.set_rule(
        info.context.require_caller(),
        rule,
        enabled=input.enabled,
        threshold=input.threshold,
        window_minutes=input.window_minutes,
        severity=input.severity.value if input.severity else None,
        suspend=input.suspend,
    )
    return AlarmRule.from_rule(changed)


async def alarm_settings(info: Info) -> AlarmSettings:
    values = await config.alarm_settings(info.context.require_caller())
    return AlarmSettings.from_values(values, info.context.settings)


async def set_alarm_settings(info: Info, input: AlarmSettingsInput) -> AlarmSettingsResult:
    """The webhook and working hours (administrators)."""
    hours = input.working_hours
    values, secret = await config.set_alarm_settings(
        info.context.require_caller(),
        webhook_url=config.KEEP if input.webhook_url is strawberry.UNSET else input.webhook_url,
        hours=config.WorkingHours(hours.starts, hours.ends, tuple(hours.days), hours.time_zone)
        if hours
        else None,
        new_secret=input.new_webhook_secret,
    )
    return AlarmSettingsResult(
        settings=AlarmSettings.from_values(values, info.context.settings), webhook_secret=secret
    )
