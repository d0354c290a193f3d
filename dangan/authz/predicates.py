"""SQL predicates with ``?`` placeholders, composed safely and numbered at the end.

Decisions become SQL fragments such as ``c.owner_id = ?`` with their parameters; only
whitelisted column names (see :mod:`dangan.authz.tables`) ever appear in the text, and
every value travels as a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Predicate:
    sql: str
    params: tuple[Any, ...] = ()

    @property
    def always(self) -> bool:
        return self.sql == "TRUE"

    @property
    def never(self) -> bool:
        return self.sql == "FALSE"


TRUE = Predicate("TRUE")
FALSE = Predicate("FALSE")


def any_of(predicates: Iterable[Predicate]) -> Predicate:
    parts = [p for p in predicates if not p.never]
    if any(p.always for p in parts):
        return TRUE
    if not parts:
        return FALSE
    if len(parts) == 1:
        return parts[0]
    return Predicate(
        "(" + " OR ".join(f"({p.sql})" for p in parts) + ")",
        tuple(v for p in parts for v in p.params),
    )


def all_of(predicates: Iterable[Predicate]) -> Predicate:
    parts = [p for p in predicates if not p.always]
    if any(p.never for p in parts):
        return FALSE
    if not parts:
        return TRUE
    if len(parts) == 1:
        return parts[0]
    return Predicate(
        " AND ".join(f"({p.sql})" for p in parts), tuple(v for p in parts for v in p.params)
    )


def none_of(predicate: Predicate) -> Predicate:
    """When ``predicate`` does not hold (NULL counts as not holding)."""
    if predicate.always:
        return FALSE
    if predicate.never:
        return TRUE
    return Predicate(f"NOT COALESCE(({predicate.sql}), FALSE)", predicate.params)


class Numbered:
    """Collects parameters while SQL is assembled, turning each ``?`` into ``$n``."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def add(self, predicate: Predicate) -> str:
        pieces = predicate.sql.split("?")
        if len(pieces) - 1 != len(predicate.params):
            raise ValueError("placeholder count does not match the parameters")
        text = pieces[0]
        for value, piece in zip(predicate.params, pieces[1:], strict=True):
            self.params.append(value)
            text += f"${len(self.params)}{piece}"
        return text

    def value(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"
