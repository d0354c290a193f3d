"""When each tenant's scheduled backup starts: the deployment's ``DANGAN_BACKUP_HOUR``:
``_MINUTE`` (UTC), or the tenant's own time from ``public.backup_schedule``, or never
(scheduled backups turned off for the tenant; on-demand ones still run).

The scheduler ticks every few minutes and queues each tenant whose time of day has
come and whose day's slot has not been asked for yet (no run of it recorded), so a tick
missed while no worker ran is made up by the next one, and a day's backup is queued
once: the slot's job id and the catalogue take care of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from tortoise import connections

from dangan.backups.slots import backup_id
from dangan.services.errors import BadUserInput
from dangan.settings import Settings
from dangan.tenants.scope import TenantRef


@dataclass(frozen=True)
class Schedule:
    hour: int
    minute: int
    enabled: bool
    own: bool  # False: the deployment's default

    @property
    def at(self) -> time:
        return time(self.hour, self.minute)

    def describe(self) -> str:
        if not self.enabled:
            return "off (on-demand backups only)"
        whose = "its own" if self.own else "the default"
        return f"daily at {self.hour:02d}:{self.minute:02d} UTC ({whose})"


async def schedules(settings: Settings) -> dict[int, Schedule]:
    """Every tenant's own schedule, by tenant id (tenants without one use the default)."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT tenant_id, hour, minute, enabled FROM public.backup_schedule"
    )
    return {r["tenant_id"]: Schedule(r["hour"], r["minute"], r["enabled"], True) for r in rows}


def default_schedule(settings: Settings) -> Schedule:
    return Schedule(settings.backup_hour, settings.backup_minute, True, False)


async def tenant_schedule(settings: Settings, tenant: TenantRef) -> Schedule:
    return (await schedules(settings)).get(tenant.id, default_schedule(settings))


async def set_schedule(
    tenant: TenantRef, *, hour: int | None, minute: int, enabled: bool = True
) -> None:
    """Give ``tenant`` its own time (or turn its scheduled backups off); ``hour`` None
    with ``enabled`` True: back to the default."""
    db = connections.get("default")
    if enabled and hour is None:
        await db.execute_query(
            "DELETE FROM public.backup_schedule WHERE tenant_id = $1", [tenant.id]
        )
        return
    if hour is not None and not 0 <= hour <= 23:
        raise BadUserInput("hour must be 0-23 (UTC)", field="hour")
    if not 0 <= minute <= 59:
        raise BadUserInput("minute must be 0-59", field="minute")
    await db.execute_query(
        "INSERT INTO public.backup_schedule (tenant_id, hour, minute, enabled)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET hour = $2,"
        " minute = $3, enabled = $4, updated_at = now()",
        [tenant.id, hour if hour is not None else 0, minute, enabled],
    )


async def due_tenants(
    settings: Settings, tenants: list[TenantRef], now: datetime
) -> list[TenantRef]:
    """The tenants whose scheduled backup of ``now``'s day (UTC) is due and not yet
    asked for."""
    own = await schedules(settings)
    default = default_schedule(settings)
    slot = backup_id("scheduled", now)
    rows = await connections.get("default").execute_query_dict(
        "SELECT tenant_id FROM public.backup_run WHERE backup_id = $1", [slot]
    )
    asked = {r["tenant_id"] for r in rows}
    clock = now.time().replace(tzinfo=None)
    return [
        tenant
        for tenant in tenants
        if tenant.id not in asked
        and (schedule := own.get(tenant.id, default)).enabled
        and clock >= schedule.at
    ]
