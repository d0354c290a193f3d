"""Deciding one action on one customer given as plain data, without a database.

Policy test cases (``policies/tests/*.yaml``) describe a customer, its grants and its
department links as dictionaries. The decision is the same Oso data filter the API
turns into SQL, evaluated here with the same meaning: each OR branch holds when its
conditions on the customer hold and, for each related class it mentions, at least one
related row satisfies that class's conditions (the SQL's correlated EXISTS).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from polar.data.filter import Condition, DataFilter, Projection

from dangan.authz.adapter import PolicyError
from dangan.authz.subjects import Customer
from dangan.authz.tables import TABLES

Row = Mapping[str, Any]


def _value(side: Any, rows: Mapping[type, Row]) -> Any:
    if isinstance(side, Projection):
        field = side.field or "id"
        if field not in TABLES[side.source].columns:
            raise PolicyError(f"policies may not use {side.source.__name__}.{field}")
        return rows[side.source].get(field)
    return side


def _holds(condition: Condition, rows: Mapping[type, Row]) -> bool:
    left, right = _value(condition.left, rows), _value(condition.right, rows)
    if condition.cmp == "Eq":
        return left is not None and right is not None and left == right
    if condition.cmp == "Neq":
        return left is not None and right is not None and left != right
    if condition.cmp == "In":
        return left in (right or ())
    if condition.cmp == "Nin":
        return left not in (right or ())
    raise PolicyError(f"unsupported comparison {condition.cmp}")


def _source(side: Any) -> type | None:
    return side.source if isinstance(side, Projection) else None


def decide(data_filter: DataFilter, customer: Row, related: Mapping[type, Sequence[Row]]) -> bool:
    for branch in data_filter.conditions:
        on_customer: list[Condition] = []
        by_class: dict[type, list[Condition]] = defaultdict(list)
        for condition in branch:
            sources = {_source(condition.left), _source(condition.right)} - {None, Customer}
            other = sources.pop() if sources else None
            (by_class[other] if other is not None else on_customer).append(condition)
        if not all(_holds(c, {Customer: customer}) for c in on_customer):
            continue
        if all(
            any(
                all(_holds(c, {Customer: customer, cls: row}) for c in conditions)
                for row in related.get(cls, ())
            )
            for cls, conditions in by_class.items()
        ):
            return True
    return False
