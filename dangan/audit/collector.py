"""What a request sent out, gathered while it runs: the customers returned and, per
type, which fields went out in full, masked or hidden.

The objects the API returns are built from rows in a few places (``Customer.from_rows``,
the record types' ``from_rows``); those call :func:`note_rows` with the rows and what
they found hidden, and the masked ones are read from the ``__masked__<col>`` flags the
projection adds. The collector of the running request is found through a context
variable, so the builders need no request object, and nothing is collected outside a
request. A page holds up to 1,000 rows: everything here is a C-level pass over them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from dangan.authz.access import MASKED_FLAG

FULL, MASKED, HIDDEN = "full", "masked", "hidden"
# Columns that identify rows rather than carry customer data.
_KEYS = frozenset({"id", "customer_id"})
_ID_BYTES = attrgetter("bytes")


@dataclass
class AuditCollector:
    # Ids of the customers returned, packed (16 bytes each), one chunk per query.
    id_chunks: list[bytes] = field(default_factory=list)
    # type → field → the levels its values went out at (several if they varied by row)
    fields: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def customer_ids(self) -> bytes:
        """Every customer returned once, packed (a single page needs no dedup)."""
        if len(self.id_chunks) <= 1:
            return b"".join(self.id_chunks)
        seen = dict.fromkeys(
            chunk[i : i + 16] for chunk in self.id_chunks for i in range(0, len(chunk), 16)
        )
        return b"".join(seen)

    def fields_summary(self) -> dict[str, dict[str, str]]:
        """``{type: {field: "full" | "masked" | "hidden" | "full,masked" …}}``."""
        order = (FULL, MASKED, HIDDEN)
        return {
            kind: {
                name: ",".join(level for level in order if level in levels)
                for name, levels in sorted(names.items())
            }
            for kind, names in sorted(self.fields.items())
        }


def _packed_ids(ids: Iterable[Any]) -> bytes:
    """The ids, 16 bytes each: UUIDs as they come from asyncpg, or text ids."""
    ids = list(ids)
    try:
        return b"".join(map(_ID_BYTES, ids))
    except AttributeError:
        return b"".join(uuid.UUID(str(value)).bytes for value in ids)


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


def note_rows(
    kind: str,
    rows: Sequence[Any],
    redacted: Iterable[frozenset[str]],
    names: Mapping[str, str] | None = None,
) -> None:
    """Record rows of one query about to go out as ``kind`` objects: their customers
    (``id`` for customers, ``customer_id`` for records) and each field's levels.
    ``redacted``: the names hidden from the caller, one set per row that had any;
    ``names``: column → field name where they differ (as in ``redacted``)."""
    collector = _current.get()
    if collector is None or not rows:
        return
    shape = list(rows[0].keys())  # asyncpg records: ``in`` would test the values
    present = set(shape)
    id_key = "id" if kind == "Customer" else "customer_id"
    if id_key in present:
        collector.id_chunks.append(_packed_ids(map(itemgetter(id_key), rows)))
    hidden_counts: Counter[str] = Counter()
    for names_hidden in redacted:
        hidden_counts.update(names_hidden)
    levels = collector.fields.setdefault(kind, {})
    total = len(rows)
    for column in shape:
        if column in _KEYS or column.startswith("__"):
            continue
        name = names.get(column, column) if names else column
        masked_key = f"{MASKED_FLAG}{column}"
        hidden = hidden_counts[name]
        masked = sum(map(itemgetter(masked_key), rows)) if masked_key in present else 0
        seen = levels.setdefault(name, set())
        if hidden:
            seen.add(HIDDEN)
        if masked:
            seen.add(MASKED)
        if total - hidden - masked > 0:
            seen.add(FULL)
