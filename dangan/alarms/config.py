"""A tenant's alarm settings (``alarm_setting``): its webhook and its working hours.

The webhook's secret signs every delivery (:mod:`dangan.alarms.webhook`). It is made
when a tenant first sets a URL (or on request) and shown once, like an API key; it is
never readable afterwards. A tenant without a URL of its own uses the operator's
``DANGAN_ALARM_WEBHOOK_URL`` (signed with ``DANGAN_ALARM_WEBHOOK_SECRET``), if any.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, time
from enum import Enum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection

SECRET_PREFIX = "dgwh_"


class Keep(Enum):
    """An argument left out: the setting keeps its value (``None`` clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class WorkingHours:
    starts: time
    ends: time  # before ``starts``: hours that run past midnight
    days: tuple[int, ...]  # ISO weekdays, 1 = Monday, of the day the hours start
    time_zone: str

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls within working hours."""
        local = moment.astimezone(ZoneInfo(self.time_zone))
        clock = local.time().replace(tzinfo=None)
        weekday = local.isoweekday()
        if self.starts < self.ends:
            return weekday in self.days and self.starts <= clock < self.ends
        if clock >= self.starts:
            return weekday in self.days
        yesterday = 7 if weekday == 1 else weekday - 1
        return clock < self.ends and yesterday in self.days


@dataclass(frozen=True)
class AlarmSettings:
    webhook_url: str | None
    webhook_secret: str | None
    hours: WorkingHours
    updated_by: int | None
    updated_at: datetime

    def webhook(self, settings: Settings) -> tuple[str, str, bool] | None:
        """(url, secret, the tenant's own) where alerts go, or None: nowhere."""
        return self.own_webhook() or platform_webhook(settings)

    def own_webhook(self) -> tuple[str, str, bool] | None:
        """The tenant's own webhook (url, secret, True), if it set one."""
        if self.webhook_url and self.webhook_secret:
            return self.webhook_url, self.webhook_secret, True
        return None


def platform_webhook(settings: Settings) -> tuple[str, str, bool] | None:
    """The operators' webhook (``DANGAN_ALARM_WEBHOOK_URL``) as (url, secret, False)."""
    if settings.alarm_webhook_url and settings.alarm_webhook_secret:
        return settings.alarm_webhook_url, settings.alarm_webhook_secret, False
    return None


_COLUMNS = (
    "webhook_url, webhook_secret, work_starts, work_ends, work_days, time_zone,"
    " updated_by, updated_at"
)


def _settings(row: Any) -> AlarmSettings:
    return AlarmSettings(
        webhook_url=row["webhook_url"],
        webhook_secret=row["webhook_secret"],
        hours=WorkingHours(
            starts=row["work_starts"],
            ends=row["work_ends"],
            days=tuple(row["work_days"]),
            time_zone=row["time_zone"],
        ),
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
    )


async def load_settings() -> AlarmSettings:
    """The tenant's alarm settings (inside its transaction)."""
    return _settings(await raw_connection().fetchrow(f"SELECT {_COLUMNS} FROM alarm_setting"))


async def alarm_settings(caller: Caller) -> AlarmSettings:
    check_allowed(caller, "alarm.read")
    return await load_settings()


def check_webhook_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise BadUserInput("webhookUrl must be an http(s) URL with a host", field="webhookUrl")
    return url


def check_hours(hours: WorkingHours) -> WorkingHours:
    if hours.starts == hours.ends:
        raise BadUserInput("working hours must not start when they end", field="workingHours")
    days = tuple(sorted(set(hours.days)))
    if not days or not all(1 <= day <= 7 for day in days):
        raise BadUserInput(
            "days are ISO weekdays 1 (Monday) to 7 (Sunday), at least one",
            field="workingHours.days",
        )
    try:
        ZoneInfo(hours.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadUserInput(
            f"unknown time zone {hours.time_zone!r} (e.g. Asia/Shanghai)",
            field="workingHours.timeZone",
        ) from exc
    return WorkingHours(hours.starts, hours.ends, days, hours.time_zone)


async def set_alarm_settings(
    caller: Caller,
    *,
    webhook_url: str | Keep | None = KEEP,
    hours: WorkingHours | None = None,
    new_secret: bool = False,
) -> tuple[AlarmSettings, str | None]:
    """Change the webhook (None: the operator's default) and working hours
    (administrators). Returns the settings and, when one was just made, the webhook's
    secret — the only time it is shown."""
    check_allowed(caller, "alarm.manage")
    current = await load_settings()
    url = current.webhook_url if isinstance(webhook_url, Keep) else webhook_url
    if url is not None:
        url = check_webhook_url(url)
    hours = check_hours(hours) if hours is not None else current.hours
    secret = current.webhook_secret
    shown: str | None = None
    if url is None:
        if new_secret:
            raise BadUserInput("set a webhookUrl of your own first", field="newWebhookSecret")
        secret = None
    elif new_secret or secret is None:
        secret = shown = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = await raw_connection().fetchrow(
        "UPDATE alarm_setting SET webhook_url = $1, webhook_secret = $2, work_starts = $3,"
        " work_ends = $4, work_days = $5, time_zone = $6, updated_by = $7, updated_at = now()"
        f" RETURNING {_COLUMNS}",
        url,
        secret,
        hours.starts,
        hours.ends,
        list(hours.days),
        hours.time_zone,
        caller.id,
    )
    return _settings(row), shown
