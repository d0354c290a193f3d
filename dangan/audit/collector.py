"""What a request sent out, gathered while it runs: the customers returned and, per
type, which fields went out in full, masked or hidden.

The objects the API returns are built from rows in a few places (``Customer.from_rows``,
the record types' ``from_rows``); those call :func:`note_rows`, which reads the row
flags the projection adds (``__hidden__<col>``, ``__masked__<col>``). The collector of
the running request is found through a context variable, so the builders need no
request object, and nothing is collected outside a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from dangan.authz.access import HIDDEN_FLAG, MASKED_FLAG

FULL, MASKED, HIDDEN = "full", "masked", "hidden"
# Columns that identify rows rather than carry customer data.
_KEYS = frozenset({"id", "customer_id"})


@dataclass
class AuditCollector:
    customers: set[Any] = field(default_factory=set)
    # type → column → the levels its values went out at (several if they varied by row)
    fields: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def fields_summary(self) -> dict[str, dict[str, str]]:
        """``{type: {column: "full" | "masked" | "hidden" | "full,masked" …}}``."""
        order = (FULL, MASKED, HIDDEN)
        return {
            kind: {
                column: ",".join(level for level in order if level in levels)
                for column, levels in sorted(columns.items())
            }
            for kind, columns in sorted(self.fields.items())
        }


_current: ContextVar[AuditCollector | None] = ContextVar("dangan_audit", default=None)


@contextmanager
def collecting() -> Iterator[AuditCollector]:
    """A fresh collector for the block (and the tasks it starts)."""
    collector = AuditCollector()
    token = _current.set(collector)
    try:
        yield collector
    finally:
        _current.reset(token)


def note_rows(kind: str, rows: Sequence[Any]) -> None:
    """Record rows of one query about to go out as ``kind`` objects: their customers
    (``id`` for customers, ``customer_id`` for records) and each column's levels."""
    collector = _current.get()
    if collector is None or not rows:
        return
    shape = list(rows[0].keys())
    present = set(shape)
    id_key = "id" if kind == "Customer" else "customer_id"
    if id_key in present:
        collector.customers.update(map(itemgetter(id_key), rows))
    levels = collector.fields.setdefault(kind, {})
    for column in shape:
        if column in _KEYS or column.startswith("__"):
            continue
        seen = levels.setdefault(column, set())
        hidden_key, masked_key = f"{HIDDEN_FLAG}{column}", f"{MASKED_FLAG}{column}"
        hidden = itemgetter(hidden_key) if hidden_key in present else None
        masked = itemgetter(masked_key) if masked_key in present else None
        seen.update(_levels(rows, hidden, masked))


def _levels(
    rows: Sequence[Any], hidden: Callable[[Any], Any] | None, masked: Callable[[Any], Any] | None
) -> set[str]:
    """The levels one column's values went out at. ``any``/``all`` over ``map`` stop at
    the first decisive row and cost tens of nanoseconds a row (a page holds 1,000)."""
    found = set()
    if hidden is not None and any(map(hidden, rows)):
        found.add(HIDDEN)
    if masked is not None and any(map(masked, rows)):
        found.add(MASKED)
    if hidden is None and masked is None:
        full = True
    elif masked is None:
        full = not all(map(hidden, rows))  # type: ignore[arg-type]
    elif hidden is None:
        full = not all(map(masked, rows))
    else:
        full = any(not hidden(row) and not masked(row) for row in rows)
    if full:
        found.add(FULL)
    return found
