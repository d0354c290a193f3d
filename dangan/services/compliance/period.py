"""The period a compliance report covers: ``[from, to)``, at most a year and a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dangan.services.errors import BadUserInput

MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: datetime  # included
    end: datetime  # excluded

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """The SQL parameters ``$1``, ``$2`` of ``at >= $1 AND at < $2``."""
        return self.start, self.end


def _aware(moment: datetime) -> datetime:
    """A time without an offset is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_period(start: datetime, end: datetime) -> Period:
    """The period from ``start`` (included) to ``end`` (excluded); BAD_USER_INPUT naming
    the field when ``end`` is not after ``start`` or the period is longer than
    ``MAX_DAYS`` days."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        raise BadUserInput("to must be later than from", field="to")
    if end - start > timedelta(days=MAX_DAYS):
        raise BadUserInput(f"the period may span at most {MAX_DAYS} days", field="to")
    return Period(start, end)
