"""Policy test cases: plain YAML an administrator can read and extend.

```yaml
- name: a salesperson sees their own customer's phone in full
  actor: {role: sales, id: 2, department_id: 5}     # or {app: 7, scopes: [customers:read]}
  customer: {owner_id: 2, department_id: 5}          # any customer columns
  grants: [{user_id: 3, field_class: contact, level: masked}]   # approved shares, optional
  departments: [{ancestor_id: 4}]                    # the customer's department tree, optional
  expect: {read: true, phone: full, id_number: masked, annual_revenue: hidden,
           edit: true, approve_share: false, reveal id_number: true,
           approve_change: false, approval credit_rating: true, read_audit: false}
- name: an auditor reads the compliance report
  actor: {role: auditor, id: 8}                      # no customer: a rule about the actor
  expect: {compliance_report: true}
```

Fields expect ``full``, ``masked`` or ``hidden`` (a customer the actor can't read shows
nothing); actions (``read``, ``edit``, ``approve_share``, ``approve_change``, ``reveal
<field>``, ``approval <field>`` — a change to it waits for approval, ``read_audit`` — the
actor may read the audit trail, whatever the customer) expect ``true`` or ``false``; so
do rules about the actor alone (``compliance_report``: ``can_read_compliance_report``;
``manage_retention``, ``manage_legal_holds``, ``approve_purge``,
``read_destruction_records``: the rules of ``policies/retention.polar``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dangan.authz.adapter import PolicyError
from dangan.authz.engine import READ_AUDIT, PolicyEngine
from dangan.authz.evaluate import decide
from dangan.authz.retention import RETENTION_CHECKS
from dangan.authz.subjects import Actor, DepartmentLink, PartnerApp, ShareGrant, User
from dangan.models.archive import CUSTOMER_FIELDS

ACTIONS = ("read", "edit", "approve_share", "approve_change")
FIELD_ACTIONS = ("reveal", "approval")
OUTCOMES = ("full", "masked", "hidden")
# Checks of rules about the actor alone → the rule.
ACTOR_RULES: dict[str, str] = {
    "compliance_report": "can_read_compliance_report",
    **RETENTION_CHECKS,
}


@dataclass(frozen=True)
class Failure:
    case: str
    check: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.case}: {self.check} should be {self.expected}, is {self.actual}"


def _actor(spec: Mapping[str, Any]) -> Actor:
    if "app" in spec:
        return PartnerApp(id=int(spec["app"]), scopes=tuple(sorted(spec.get("scopes", []))))
    roles = spec.get("roles") or [spec["role"]]
    return User(
        id=int(spec.get("id", 1)),
        roles=tuple(sorted(roles)),
        department_id=spec.get("department_id"),
    )


class CaseRunner:
    def __init__(self, engine: PolicyEngine, case: Mapping[str, Any]) -> None:
        self.engine = engine
        self.actor = _actor(case["actor"])
        self.customer = {"id": "00000000-0000-0000-0000-000000000001", **case.get("customer", {})}
        self.related: dict[type, list[dict[str, Any]]] = {
            ShareGrant: [{"customer_id": self.customer["id"], **g} for g in case.get("grants", [])],
            DepartmentLink: [
                {"descendant_id": self.customer.get("department_id"), **d}
                for d in case.get("departments", [])
            ],
        }

    def allowed(self, action: str) -> bool:
        return decide(self.engine.data_filter(self.actor, action), self.customer, self.related)

    def field_allowed(self, level: str, field: str) -> bool:
        targets = [CUSTOMER_FIELDS[field].sensitivity]
        if field in self.engine.named_fields:
            targets.append(field)
        return any(self.allowed(f"{level}:{target}") for target in targets)

    def outcome(self, field: str) -> str:
        if not self.allowed("read"):
            return "hidden"
        if self.field_allowed("full", field):
            return "full"
        if CUSTOMER_FIELDS[field].mask and self.field_allowed("masked", field):
            return "masked"
        return "hidden"


def run_cases(engine: PolicyEngine, cases: list[Mapping[str, Any]]) -> list[Failure]:
    failures: list[Failure] = []
    for number, case in enumerate(cases, start=1):
        name = str(case.get("name", f"case {number}"))
        runner = CaseRunner(engine, case)
        for check, expected in (case.get("expect") or {}).items():
            if check == READ_AUDIT:
                actual: Any = engine.may_read_audit(runner.actor)
            elif check in ACTIONS:
                actual = runner.allowed(check)
            elif check in ACTOR_RULES:
                actual = runner.engine.actor_allows(ACTOR_RULES[check], runner.actor)
            elif check.split(" ", 1)[0] in FIELD_ACTIONS and " " in check:
                action, field = check.split(" ", 1)
                if field.strip() not in CUSTOMER_FIELDS:
                    raise PolicyError(f"{name}: unknown field in check {check!r}")
                actual = runner.field_allowed(action, field.strip())
            elif check in CUSTOMER_FIELDS:
                actual = runner.outcome(check)
                if expected not in OUTCOMES:
                    raise PolicyError(f"{name}: {check} expects one of {', '.join(OUTCOMES)}")
            else:
                raise PolicyError(f"{name}: unknown check {check!r}")
            if actual != expected:
                failures.append(Failure(name, check, expected, actual))
    return failures


def load_cases(texts: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """Parse YAML test files ({name: text}); each holds a list of cases."""
    cases: list[Mapping[str, Any]] = []
    for name, text in sorted(texts.items()):
        try:
            loaded = yaml.safe_load(text) or []
        except yaml.YAMLError as exc:
            raise PolicyError(f"{name}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, list) or not all(isinstance(c, dict) for c in loaded):
            raise PolicyError(f"{name}: a test file is a list of cases")
        cases += [{**case, "name": f"{name}: {case.get('name', '?')}"} for case in loaded]
    return cases
