"""Oso data filters → SQL predicates over the customer row (alias ``c``).

A filter is an OR of branches, each an AND of conditions comparing a projection (a
registered class's field) with a value or another projection. Conditions on the
customer become ``c.<column> = ?``; conditions on a related class become a correlated
``EXISTS`` per branch — a global join would drop, for instance, a salesperson's own
customers that have no grants (FINDINGS.md).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from polar.data.filter import Condition, DataFilter, Projection

from dangan.authz.predicates import FALSE, TRUE, Predicate, all_of, any_of
from dangan.authz.subjects import Customer
from dangan.authz.tables import CUSTOMER_ALIAS, LINKS, TABLES


class PolicyError(ValueError):
    """A policy asks for something that cannot become SQL (unknown field, relation...)."""


_OPERATORS = {"Eq": "=", "Neq": "<>"}


def _column(projection: Projection) -> tuple[type, str]:
    table = TABLES.get(projection.source)
    field = projection.field or "id"
    if table is None or field not in table.columns:
        name = getattr(projection.source, "__name__", projection.source)
        raise PolicyError(f"policies may not use {name}.{field}: unknown field")
    return projection.source, f"{table.alias}.{field}"


def _literal_only(condition: Condition) -> bool | None:
    left, right = condition.left, condition.right
    if isinstance(left, Projection) or isinstance(right, Projection):
        return None
    if left is None or right is None:
        return False  # a missing value matches nothing (as in SQL and in evaluate.py)
    if condition.cmp == "Eq":
        return bool(left == right)
    if condition.cmp == "Neq":
        return bool(left != right)
    raise PolicyError(f"unsupported comparison {condition.cmp}")


def _condition(condition: Condition) -> tuple[type | None, Predicate]:
    """One condition; returns the related class it needs (None for the customer)."""
    constant = _literal_only(condition)
    if constant is not None:
        return None, TRUE if constant else FALSE
    sides: list[str] = []
    params: list[Any] = []
    needs: type | None = None
    for side in (condition.left, condition.right):
        if isinstance(side, Projection):
            source, column = _column(side)
            if source is not Customer:
                needs = source
            sides.append(column)
        else:
            sides.append("?")
            params.append(side)
    if condition.cmp in ("In", "Nin"):
        op = "= ANY" if condition.cmp == "In" else "<> ALL"
        return needs, Predicate(f"{sides[0]} {op}({sides[1]})", tuple(params))
    if condition.cmp not in _OPERATORS:
        raise PolicyError(f"unsupported comparison {condition.cmp}")
    if None in params:
        # A missing value matches nothing, as in SQL (NULL = x is never true): a caller
        # with no department must not match every share that has no department.
        return needs, FALSE
    return needs, Predicate(f"{sides[0]} {_OPERATORS[condition.cmp]} {sides[1]}", tuple(params))


def _exists(target: type, conditions: list[Predicate]) -> Predicate:
    link = next((link for link in LINKS.values() if link.target is target), None)
    if link is None:
        raise PolicyError(f"no relation from Customer to {target.__name__}")
    table = TABLES[target]
    inner = all_of(
        [
            Predicate(f"{table.alias}.{link.other_column} = {CUSTOMER_ALIAS}.{link.my_column}"),
            *conditions,
        ]
    )
    return Predicate(
        f"EXISTS (SELECT 1 FROM {table.name} {table.alias} WHERE {inner.sql})", inner.params
    )


def filter_to_predicate(data_filter: DataFilter) -> Predicate:
    if data_filter.model is not Customer:
        raise PolicyError("only Customer rules can become SQL")
    branches: list[Predicate] = []
    for conjunction in data_filter.conditions:
        on_customer: list[Predicate] = []
        related: dict[type, list[Predicate]] = defaultdict(list)
        for condition in conjunction:
            needs, predicate = _condition(condition)
            (related[needs] if needs else on_customer).append(predicate)
        branch = all_of(
            _unique(
                [
                    *on_customer,
                    *(_exists(target, _unique(preds)) for target, preds in related.items()),
                ]
            )
        )
        branches.append(branch)
    return any_of(_unique(branches))


def _unique(predicates: list[Predicate]) -> list[Predicate]:
    """Polar repeats equivalent branches; repeating them in SQL only costs time."""
    seen: dict[tuple[str, tuple[Any, ...]], Predicate] = {}
    for predicate in predicates:
        seen.setdefault((predicate.sql, predicate.params), predicate)
    return list(seen.values())
