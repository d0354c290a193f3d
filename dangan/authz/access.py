"""A caller's access to customers in one request: the row filter and, per field, when
the value is shown in full, masked or not at all — all as SQL, decided once.

Reads select ``CASE WHEN <full> THEN c.phone WHEN <masked> THEN <mask(c.phone)> END``
so a value the caller may not see never leaves the database, plus a flag column per
field that tells the API which nulls are redactions (``extensions.redacted``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dangan.authz.engine import PolicyEngine
from dangan.authz.masking import masked_sql
from dangan.authz.predicates import Numbered, Predicate, all_of, any_of
from dangan.authz.subjects import actor_for
from dangan.authz.tables import CUSTOMER_ALIAS
from dangan.models.archive import CUSTOMER_FIELDS
from dangan.services.callers import Caller

# Columns whose masked form is text while the column is not: their full form is cast to
# text too, so both branches of the CASE have one type (the API shows them as strings).
TEXT_CAST = frozenset({"birthday", "payment_capacity", "annual_revenue"})
HIDDEN_FLAG = "__hidden__"


@dataclass(frozen=True)
class FieldAccess:
    column: str
    full: Predicate
    masked: Predicate
    match: Predicate
    mask_rule: str | None

    @property
    def shown(self) -> Predicate:
        """When any form of the value is shown (full, or masked if it has a masked form)."""
        return any_of([self.full, self.masked]) if self.mask_rule else self.full

    @property
    def never_shown(self) -> bool:
        return self.shown.never

    @property
    def exact_match(self) -> Predicate:
        """When an exact-match filter may test the value: full, or masked where the
        policy also grants "match"."""
        return any_of([self.full, all_of([self.match, self.masked])])


class CustomerAccess:
    def __init__(self, engine: PolicyEngine, caller: Caller) -> None:
        self.engine = engine
        self.actor = actor_for(caller)
        self.rows = engine.predicate(self.actor, "read")
        self._fields: dict[str, FieldAccess] = {}
        # Per-request facts the services look up about this access (e.g. whether a
        # field is shown on any customer the caller sees).
        self.memo: dict[object, object] = {}

    def field(self, column: str) -> FieldAccess | None:
        """None for a column no policy can grant (not in CUSTOMER_FIELDS)."""
        if column not in CUSTOMER_FIELDS:
            return None
        if column not in self._fields:
            self._fields[column] = FieldAccess(
                column=column,
                full=self.engine.field_predicate(self.actor, "full", column),
                masked=self.engine.field_predicate(self.actor, "masked", column),
                match=self.engine.field_predicate(self.actor, "match", column),
                mask_rule=CUSTOMER_FIELDS[column].mask,
            )
        return self._fields[column]

    def can(self, action: str) -> Predicate:
        return self.engine.predicate(self.actor, action)

    def reveal(self, column: str) -> Predicate:
        return self.engine.field_predicate(self.actor, "reveal", column)

    def select(self, column: str, sql: Numbered) -> list[str]:
        """The select-list items for ``column``: its value as this caller may see it, and
        (when that depends on the row) a flag saying whether it was hidden."""
        ref = f"{CUSTOMER_ALIAS}.{column}"
        if column == "id":
            return [ref]
        access = self.field(column)
        if access is None or access.never_shown:
            return [f"NULL AS {column}", f"TRUE AS {HIDDEN_FLAG}{column}"]
        if access.full.always:
            return [ref]
        full_ref = f"{ref}::text" if column in TEXT_CAST else ref
        branches = [f"WHEN {sql.add(access.full)} THEN {full_ref}"]
        masked = masked_sql(access.mask_rule, ref)
        if masked is not None and not access.masked.never:
            branches.append(f"WHEN {sql.add(access.masked)} THEN {masked}")
        value = f"CASE {' '.join(branches)} END AS {column}"
        flag = f"NOT COALESCE({sql.add(access.shown)}, FALSE) AS {HIDDEN_FLAG}{column}"
        return [value, flag]
