"""The same request without its audit event, to measure what the trail costs.

Only for benchmarks: the product has no switch to turn auditing off. Within
:func:`unaudited` the endpoint collects nothing (the rows are not noted) and writes no
event; the rest of the request — authentication, policy, SQL, serialisation — is the
same. The sides of a comparison run one after another, never at once, so swapping the
two names of ``dangan.graphql.endpoint`` for the duration of one call is safe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from dangan.audit.collector import AuditCollector
from dangan.graphql import endpoint

T = TypeVar("T")


@contextmanager
def _not_collecting() -> Iterator[AuditCollector]:
    yield AuditCollector()  # not made current: note_rows() finds none and returns


async def _not_recording(*_args: Any, **_kwargs: Any) -> int:
    return 0


@contextmanager
def unaudited() -> Iterator[None]:
    saved = endpoint.collecting, endpoint.record_request
    endpoint.collecting, endpoint.record_request = _not_collecting, _not_recording
    try:
        yield
    finally:
        endpoint.collecting, endpoint.record_request = saved


def without_audit(run: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """``run`` with the endpoint's audit collection and event write left out."""

    async def call() -> T:
        with unaudited():
            return await run()

    return call
