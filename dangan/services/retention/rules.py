"""The retention rules of a tenant (``retention_rule``): what each one destroys, after how
long, with how much notice, and whether someone must approve first.

Four rules, seeded by tenant migration 12 with the defaults of the regulations'
periodic purge (定期清理); whoever the policy's ``can_manage_retention`` allows
(administrators by default) changes them. Every member of staff may read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dangan.authz.retention import check_retention_right
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Forbidden, NotFound
from dangan.tenants.scope import raw_connection

MAX_MONTHS = 1200
MIN_GRACE_DAYS = 7  # an owner always has a week's notice
MAX_GRACE_DAYS = 365


@dataclass(frozen=True)
class RuleSpec:
    """What a rule applies to (``{months}``: the retention in words) and what it destroys."""

    code: str
    record_type: str  # customer, communication or share_request
    applies_to: str


RULE_SPECS: dict[str, RuleSpec] = {
    spec.code: spec
    for spec in (
        RuleSpec(
            "invalid_customers",
            "customer",
            "customers whose status has been INVALID for {months}: the customer with every"
            " record, change and attachment it holds",
        ),
        RuleSpec(
            "inactive_potential_customers",
            "customer",
            "potential customers (kind or tier POTENTIAL, status ACTIVE or EXPIRED) with no"
            " activity — change, communication, purchase, opportunity, contract, payment, contact,"
            " need, complaint, survey or attachment — for {months}: the customer with"
            " everything it holds",
        ),
        RuleSpec(
            "communication_records",
            "communication",
            "communication records that took place {months} ago or more (and their change"
            " records); the customer stays",
        ),
        RuleSpec(
            "expired_share_grants",
            "share_request",
            "share requests whose end date passed {months} ago (approved and expired,"
            " revoked, rejected or never decided), with their history",
        ),
    )
}


@dataclass(frozen=True)
class RetentionRule:
    rule: str
    enabled: bool
    retention_months: int
    grace_days: int
    requires_approval: bool
    updated_by: int | None
    updated_at: datetime

    @property
    def spec(self) -> RuleSpec:
        return RULE_SPECS[self.rule]

    @property
    def period(self) -> str:
        """The retention in words: ``1 month``, ``36 months``."""
        return f"{self.retention_months} month{'s' if self.retention_months != 1 else ''}"

    @property
    def description(self) -> str:
        return self.spec.applies_to.format(months=self.period)

    @classmethod
    def from_row(cls, row: Any) -> RetentionRule:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


_COLUMNS = "rule, enabled, retention_months, grace_days, requires_approval, updated_by, updated_at"


async def load_rules() -> dict[str, RetentionRule]:
    """The tenant's rules (inside its transaction), in the order of RULE_SPECS."""
    rows = await raw_connection().fetch(f"SELECT {_COLUMNS} FROM retention_rule")
    found = {row["rule"]: RetentionRule.from_row(row) for row in rows}
    return {code: found[code] for code in RULE_SPECS if code in found}


async def retention_rules(caller: Caller) -> list[RetentionRule]:
    """The rules, for any member of staff (they say what is kept how long)."""
    if caller.kind != "user":
        raise Forbidden("retention rules are for staff accounts, not partner apps")
    return list((await load_rules()).values())


def _check_change(retention_months: int | None, grace_days: int | None) -> None:
    if retention_months is not None and not 1 <= retention_months <= MAX_MONTHS:
        raise BadUserInput(
            f"retentionMonths must be between 1 and {MAX_MONTHS}", field="retentionMonths"
        )
    if grace_days is not None and not MIN_GRACE_DAYS <= grace_days <= MAX_GRACE_DAYS:
        raise BadUserInput(
            f"graceDays must be between {MIN_GRACE_DAYS} and {MAX_GRACE_DAYS}",
            field="graceDays",
        )


async def set_retention_rule(
    caller: Caller,
    rule: str,
    *,
    enabled: bool | None = None,
    retention_months: int | None = None,
    grace_days: int | None = None,
    requires_approval: bool | None = None,
) -> RetentionRule:
    """Change what is given of one rule; the rest stays. Switching a rule off unmarks
    its candidates at once (their owners' notices go with them); a longer retention or
    a rule no longer met unmarks them at the next run, and every purge checks the rule
    again first."""
    await check_retention_right(caller, "can_manage_retention")
    if rule not in RULE_SPECS:
        raise NotFound(f"no retention rule {rule!r} (rules: {', '.join(RULE_SPECS)})", field="rule")
    _check_change(retention_months, grace_days)
    async with raw_connection().savepoint():
        row = await raw_connection().fetchrow(
            "UPDATE retention_rule SET enabled = coalesce($2, enabled),"
            " retention_months = coalesce($3, retention_months),"
            " grace_days = coalesce($4, grace_days),"
            " requires_approval = coalesce($5, requires_approval),"
            f" updated_by = $6, updated_at = now() WHERE rule = $1 RETURNING {_COLUMNS}",
            rule,
            enabled,
            retention_months,
            grace_days,
            requires_approval,
            caller.id,
        )
        if row is None:
            raise NotFound(f"no retention rule {rule!r}", field="rule")
        if not row["enabled"]:
            await raw_connection().execute(
                "UPDATE retention_candidate SET status = 'unmarked', unmarked_at = now(),"
                " unmark_reason = $2 WHERE rule = $1 AND status = 'marked'",
                rule,
                f"the rule was switched off by {caller.name}",
            )
    return RetentionRule.from_row(row)
