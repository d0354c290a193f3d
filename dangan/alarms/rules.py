"""The alarm rules of a tenant (``alarm_rule``): what each one counts, and changing them.

Six access rules, seeded by tenant migration 10, and ``backup_failed`` (version 14,
raised by the backup job: :mod:`dangan.alarms.system`). Administrators change their
threshold, window, severity, whether they run, and whether an alert suspends the actor's
credential (``backup_failed``: its severity only). Each windowed rule reads "more than
``threshold`` … within ``window_minutes``", counted per actor: a person or an app, or a
client address for anonymous callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.authz.capabilities import check_allowed
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, NotFound
from dangan.tenants.scope import raw_connection

SEVERITIES = ("low", "medium", "high", "critical")
# Error codes of a request that asked for something it may not have (probing).
PROBE_CODES = frozenset({"FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED"})
MAX_WINDOW_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class RuleSpec:
    """What a rule watches, in words (``{threshold}`` and ``{window}`` filled in)."""

    code: str
    watches: str
    windowed: bool = True
    # About the platform's own work, not a person's (raised by the job that failed, not
    # by the evaluation): it can't be turned off or made to suspend anyone, and it goes
    # to the operators' webhook as well as the tenant's own.
    platform: bool = False


RULE_SPECS: dict[str, RuleSpec] = {
    spec.code: spec
    for spec in (
        RuleSpec(
            "bulk_read",
            "a person or app is sent more than {threshold} distinct customers"
            " within {window} minutes",
        ),
        RuleSpec(
            "off_hours",
            "a person makes more than {threshold} requests outside the tenant's working"
            " hours within {window} minutes",
        ),
        RuleSpec(
            "probing",
            "more than {threshold} requests end FORBIDDEN, NOT_FOUND or UNAUTHENTICATED"
            " (refused ones included) within {window} minutes, per person or app, or per"
            " client address for anonymous callers",
        ),
        RuleSpec(
            "reveal_burst",
            "a person or app asks to reveal masked values (revealField) more than"
            " {threshold} times within {window} minutes",
        ),
        RuleSpec(
            "export_spike",
            "a person or app starts more than {threshold} customer exports within {window} minutes",
        ),
        RuleSpec(
            "new_address",
            "a person's or app's credential is used from an address it never used before"
            " (its first use anywhere is not an alarm)",
            windowed=False,
        ),
        RuleSpec(
            "backup_failed",
            "a backup of the tenant failed for good (after its retries, or at once when no"
            " retry can help); the operators are told as well",
            windowed=False,
            platform=True,
        ),
    )
}


@dataclass(frozen=True)
class AlarmRule:
    rule: str
    enabled: bool
    threshold: int | None
    window_minutes: int | None
    severity: str
    suspend: bool
    updated_by: int | None
    updated_at: datetime

    @property
    def window_seconds(self) -> int:
        return (self.window_minutes or 0) * 60

    @property
    def description(self) -> str:
        return RULE_SPECS[self.rule].watches.format(
            threshold=self.threshold, window=self.window_minutes
        )

    @classmethod
    def from_row(cls, row: Any) -> AlarmRule:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


_COLUMNS = "rule, enabled, threshold, window_minutes, severity, suspend, updated_by, updated_at"


async def load_rules() -> dict[str, AlarmRule]:
    """The tenant's rules (inside its transaction), known codes only."""
    rows = await raw_connection().fetch(f"SELECT {_COLUMNS} FROM alarm_rule ORDER BY rule")
    return {row["rule"]: AlarmRule.from_row(row) for row in rows if row["rule"] in RULE_SPECS}


async def alarm_rules(caller: Caller) -> list[AlarmRule]:
    check_allowed(caller, "alarm.read")
    return list((await load_rules()).values())


def _check_change(
    spec: RuleSpec,
    threshold: int | None,
    window_minutes: int | None,
    severity: str | None,
    enabled: bool | None = None,
    suspend: bool | None = None,
) -> None:
    if spec.platform and (enabled is False or suspend):
        raise BadUserInput(
            f"{spec.code} is about the platform's own work: it can't be turned off or"
            " suspend anyone (its severity can change)",
            field="enabled" if enabled is False else "suspend",
        )
    if not spec.windowed and (threshold is not None or window_minutes is not None):
        raise BadUserInput(
            f"{spec.code} has no threshold or window",
            field="threshold" if threshold is not None else "windowMinutes",
        )
    if threshold is not None and not 0 <= threshold <= 1_000_000:
        raise BadUserInput("threshold must be between 0 and 1,000,000", field="threshold")
    if window_minutes is not None and not 1 <= window_minutes <= MAX_WINDOW_MINUTES:
        raise BadUserInput(
            f"windowMinutes must be between 1 and {MAX_WINDOW_MINUTES}", field="windowMinutes"
        )
    if severity is not None and severity not in SEVERITIES:
        raise BadUserInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")


async def set_rule(
    caller: Caller,
    rule: str,
    *,
    enabled: bool | None = None,
    threshold: int | None = None,
    window_minutes: int | None = None,
    severity: str | None = None,
    suspend: bool | None = None,
) -> AlarmRule:
    """Change what is given of one rule (administrators); the rest stays."""
    check_allowed(caller, "alarm.manage")
    spec = RULE_SPECS.get(rule)
    if spec is None:
        raise NotFound(f"no alarm rule {rule!r} (rules: {', '.join(RULE_SPECS)})", field="rule")
    _check_change(spec, threshold, window_minutes, severity, enabled, suspend)
    row = await raw_connection().fetchrow(
        "UPDATE alarm_rule SET enabled = coalesce($2, enabled),"
        " threshold = coalesce($3, threshold), window_minutes = coalesce($4, window_minutes),"
        " severity = coalesce($5, severity), suspend = coalesce($6, suspend),"
        f" updated_by = $7, updated_at = now() WHERE rule = $1 RETURNING {_COLUMNS}",
        rule,
        enabled,
        threshold,
        window_minutes,
        severity,
        suspend,
        caller.id,
    )
    if row is None:
        raise NotFound(f"no alarm rule {rule!r}", field="rule")
    return AlarmRule.from_row(row)
