"""A loaded policy: Polar files → an Oso instance → SQL decisions, cached per actor.

Administrators write four rules in ``policies/*.polar`` (see the comments there):
``can_see`` (which customers), ``field_access`` (full or masked, per sensitivity class
or single field), ``can_reveal`` (who may reveal a masked value) and
``can_approve_share`` / ``can_edit``, and ``can_read_audit`` (who may read the audit
trail; a policy without it lets nobody). This module adds generated ``allow`` rules that
ask those rules about each field, so one set of files decides rows, fields and
approvals. Every decision is an Oso data filter turned into a SQL predicate, computed
once per (actor, action) for the life of this engine (a new policy version is a new
engine) — never per row. Rules about the actor alone (``can_read_compliance_report``)
are asked directly, once per actor.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from functools import lru_cache
from threading import Lock
from types import SimpleNamespace
from typing import Any

from oso import Oso
from polar import Variable
from polar.data.adapter import DataAdapter
from polar.data.filter import DataFilter
from polar.data_filtering import serialize_types
from polar.exceptions import OsoError
from polar.expression import Expression, Pattern
from polar.ffi import PolarSource as Source

from dangan.authz.adapter import PolicyError, filter_to_predicate
from dangan.authz.predicates import Predicate, any_of
from dangan.authz.subjects import Actor, Customer, PartnerApp
from dangan.authz.tables import ACTOR_CLASSES, TABLES, polar_fields
from dangan.models.archive import (
    CUSTOMER_FIELDS,
    SENSITIVITY_CLASSES,
    unclassified_customer_columns,
)

REQUIRED_RULES = (
    "can_see",
    "field_access",
    "can_reveal",
    "can_approve_share",
    "can_edit",
    "change_needs_approval",
    "can_approve_change",
)
# Rules whose last argument names a sensitivity class or a customer field.
CLASS_RULES = ("field_access", "can_reveal", "change_needs_approval")
LEVELS = ("full", "masked", "match")
# A rule about the actor alone (actor_allows). Optional: policy versions written before
# it existed still load, and let nobody read the trail.
AUDIT_RULE = "can_read_audit"
READ_AUDIT = "read_audit"  # its name in policy test cases


def _glue() -> str:
    """Generated rules connecting the administrators' rules to the engine's questions.

    Field questions don't repeat ``can_see``: the row filter already limits the rows, and
    leaving it out keeps each field predicate small.
    """
    lines = [
        'allow(actor, "read", c: Customer) if can_see(actor, c);',
        'allow(actor, "edit", c: Customer) if can_edit(actor, c);',
        'allow(actor, "approve_share", c: Customer) if can_approve_share(actor, c);',
        'allow(actor, "approve_change", c: Customer) if can_approve_change(actor, c);',
    ]
    for target in (*SENSITIVITY_CLASSES, *CUSTOMER_FIELDS):
        for level in LEVELS:
            lines.append(
                f'allow(actor, "{level}:{target}", c: Customer) if'
                f' field_access(actor, "{level}", c, "{target}");'
            )
        lines.append(
            f'allow(actor, "reveal:{target}", c: Customer) if can_reveal(actor, c, "{target}");'
        )
        lines.append(
            f'allow(actor, "approval:{target}", c: Customer) if'
            f' change_needs_approval(actor, c, "{target}");'
        )
    return "\n".join(lines)


class _NoQueries(DataAdapter):
    def build_query(self, data_filter: DataFilter) -> DataFilter:
        return data_filter

    def execute_query(self, query: Any) -> Any:
        raise NotImplementedError("decisions become SQL; they are never executed here")


_QUOTED = re.compile(r'"([a-z_]+)"')


class PolicyEngine:
    """One immutable policy version. Build a new engine to change policy."""

    def __init__(self, sources: Mapping[str, str], *, version: str = "default") -> None:
        self.version = version
        self.sources = dict(sources)
        self.oso = Oso()
        for cls in (*ACTOR_CLASSES, *TABLES):
            fields = polar_fields(cls) if cls in TABLES else None
            self.oso.register_class(cls, fields=fields)
        self.oso.set_data_filtering_adapter(_NoQueries())
        self.oso.register_constant(list(SENSITIVITY_CLASSES), "SENSITIVITY_CLASSES")
        self.warnings = self._load()
        self.named_fields = frozenset(self._quoted_names() & set(CUSTOMER_FIELDS))
        self._lock = Lock()
        self.oso_calls = 0
        # Caches of this engine only (they go with it when a new version replaces it).
        self._filters = lru_cache(maxsize=8192)(self._filter)
        self._predicates = lru_cache(maxsize=8192)(self._predicate)
        self._actor_rules = lru_cache(maxsize=8192)(self._actor_rule)

    def _load(self) -> list[str]:
        """Load every file at once; Polar's printed warnings (an unknown class in a
        specializer silently never matches) are captured and treated as errors."""
        captured = io.StringIO()
        sources = [Source(text, name) for name, text in sorted(self.sources.items())]
        try:
            with redirect_stdout(captured), redirect_stderr(captured):
                # One load for every file: Polar refuses a second load (FINDINGS.md).
                glue = _glue()
                self.oso._load_sources([*sources, Source(glue, "<generated>")])
        except OsoError as exc:
            raise PolicyError(str(exc)) from exc
        warnings = [line for line in captured.getvalue().splitlines() if line.strip()]
        unclassified = unclassified_customer_columns()
        if unclassified:
            raise PolicyError(
                "customer fields without a sensitivity class (add them to CUSTOMER_FIELDS): "
                + ", ".join(unclassified)
            )
        missing = [rule for rule in REQUIRED_RULES if not _defines(self.sources.values(), rule)]
        if missing:
            raise PolicyError(f"the policy must define {', '.join(missing)}")
        unknown = self.unknown_names()
        if unknown:
            raise PolicyError(
                "the policy names unknown sensitivity classes or fields: " + ", ".join(unknown)
            )
        return warnings

    def unknown_names(self) -> list[str]:
        """Quoted names in the class rules (CLASS_RULES) that are neither a sensitivity
        class nor a customer field (a typo would silently grant nothing)."""
        known = set(SENSITIVITY_CLASSES) | set(CUSTOMER_FIELDS) | set(LEVELS)
        found = self._quoted_names()
        return sorted(found - known)

    def _quoted_names(self) -> set[str]:
        found: set[str] = set()
        for text in self.sources.values():
            code = re.sub(r"#[^\n]*", "", text)
            for statement in code.split(";"):
                if re.search(rf"\b({'|'.join(CLASS_RULES)})\s*\(", statement):
                    statement = re.sub(r"has_(role|scope)\(\s*\"[^\"]*\"\s*\)", "", statement)
                    found.update(_QUOTED.findall(statement))
        return found

    def predicate(self, actor: Actor, action: str) -> Predicate:
        """The SQL condition under which ``actor`` may do ``action`` to a customer row."""
        return self._predicates(actor, action)

    def _predicate(self, actor: Actor, action: str) -> Predicate:
        return filter_to_predicate(self.data_filter(actor, action))

    def data_filter(self, actor: Actor, action: str) -> DataFilter:
        """The Oso data filter of one (actor, action): computed once per engine."""
        return self._filters(actor, action)

    def _filter(self, actor: Actor, action: str) -> DataFilter:
        with self._lock:
            self.oso_calls += 1
            return self._data_filter(actor, action)

    def _data_filter(self, actor: Actor, action: str) -> DataFilter:
        """``oso.authorized_query`` without its leak: each call on a host copy
        (FINDINGS.md: the shared host keeps every partial result forever)."""
        polar = self.oso
        host = polar.host.copy()
        is_customer = Expression("Isa", [Variable("resource"), Pattern("Customer", {})])
        constraint = Expression("And", [is_customer])
        try:
            results = [
                {"bindings": {key: host.to_polar(value)}}
                for result in polar.query_rule(
                    "allow",
                    actor,
                    action,
                    Variable("resource"),
                    bindings={"resource": constraint},
                    accept_expression=True,
                )
                for key, value in result["bindings"].items()
            ]
        except OsoError as exc:
            raise PolicyError(str(exc)) from exc
        types = serialize_types(host.distinct_user_types(), host.types)
        plan = polar.ffi_polar.build_data_filter(types, results, "resource", "Customer")
        return DataFilter.parse(SimpleNamespace(host=host), plan)

    def actor_allows(self, rule: str, actor: Actor) -> bool:
        """Whether a rule about the actor alone holds (``can_read_compliance_report(user)``:
        no customer involved, so no SQL). A rule the policy does not define holds for
        nobody (fail closed). Asked once per (rule, actor) for the life of this engine."""
        return self._actor_rules(rule, actor)

    def _actor_rule(self, rule: str, actor: Actor) -> bool:
        if not _defines(self.sources.values(), rule):
            return False
        with self._lock:
            self.oso_calls += 1
            try:
                return bool(self.oso.query_rule_once(rule, actor))
            except OsoError as exc:
                raise PolicyError(str(exc)) from exc

    def may_read_audit(self, actor: Actor) -> bool:
        """Whether ``actor`` may read the audit trail (``can_read_audit``). The rule
        names no customer, so its decision is all or nothing. Partner apps never may,
        whatever a rule says: the trail holds every caller's requests."""
        if isinstance(actor, PartnerApp):
            return False
        return self.actor_allows(AUDIT_RULE, actor)

    def field_predicate(self, actor: Actor, level: str, field: str) -> Predicate:
        """When ``actor`` sees ``field`` at ``level`` ("full", "masked"); with level
        "reveal", may reveal it; with "approval", a change to it needs approval: the
        rules for its class, or for the field itself when a policy names it."""
        spec = CUSTOMER_FIELDS[field]
        by_class = self.predicate(actor, f"{level}:{spec.sensitivity}")
        if field not in self.named_fields:
            return by_class
        return any_of([by_class, self.predicate(actor, f"{level}:{field}")])


def _defines(texts: Any, rule: str) -> bool:
    return any(re.search(rf"^\s*{rule}\s*\(", text, re.MULTILINE) for text in texts)


__all__ = ["Customer", "PolicyEngine", "PolicyError"]
