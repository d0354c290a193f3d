"""The keep-policy: which of a tenant's finished backups to keep, until when, and why.

**Which.** The newest backup of each of the last N days, ISO weeks and months *that have
a backup* (by default 7, 4 and 12: ``settings.backup_keep_daily/weekly/monthly``), in
UTC, the calendar of the backup ids. Every backup counts the same whatever its kind: a
manual backup taken in the afternoon is its day's newest, and the nightly one of that
day then goes (unless it is the newest of its week or month). Days, weeks and months
without a backup do not count, so backups that stop (a broken job, a suspended tenant)
never let the history run out: the last ones stay until newer ones replace them. The
choice depends on the backups alone, not on the time of the run: a set the policy has
pruned is kept whole by every later run until a new backup arrives (a fixed point), and
a backup once dropped is never wanted again.

**Until when.** A kept backup's *keep-until* is the end of the day after the one on which
it would leave the policy if a backup arrived every day from today on (today included: a
further backup may still come today). So under nightly backups it is the same date at
every run once the backup's day, week or month is over (a nightly daily of day D with 7
dailies: the end of D+8), and it only moves later when backups are missed, by as many
days as are missed. A backup whose period is still under way (today's; the newest of a
week or month not yet over) gets, for that period, only the end of the day after today:
it is provisional until then, so a newer backup the same day does not leave an
outdated one locked for a month or a year. Every keep-until is at least the end of
tomorrow, so a kept backup's lock outlasts the next nightly run, which extends it.

A backup the policy drops stays until its lock ends (for a backup kept until then, the
end of the day after the one it left on): the nightly prune two days after that day
removes it; the runs before are refused by the object lock and report it as waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from dangan.settings import Settings


class Finished(Protocol):
    """What the policy reads of a finished backup (a catalogue row will do)."""

    @property
    def id(self) -> str: ...

    @property
    def finished_at(self) -> datetime: ...


@dataclass(frozen=True)
class KeepPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> KeepPolicy:
        return cls(
            settings.backup_keep_daily, settings.backup_keep_weekly, settings.backup_keep_monthly
        )


@dataclass(frozen=True)
class Keeper:
    id: str
    until: datetime  # midnight UTC
    reasons: tuple[str, ...]  # "daily 2026-11-23", "weekly 2026-W48", "monthly 2026-11"


@dataclass(frozen=True)
class KeepPlan:
    keep: dict[str, Keeper]  # newest first
    drop: tuple[str, ...]  # oldest first


@dataclass(frozen=True)
class _Period:
    """A calendar period as consecutive integers (so "N periods later" is addition)."""

    name: str
    index: Callable[[date], int]
    first_day: Callable[[int], date]
    label: Callable[[date], str]


def _week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


_DAY = _Period("daily", date.toordinal, date.fromordinal, date.isoformat)
# date(1, 1, 1) is a Monday, ordinal 1: Mondays are 1 mod 7.
_WEEK = _Period(
    "weekly",
    lambda day: (day.toordinal() - 1) // 7,
    lambda index: date.fromordinal(index * 7 + 1),
    _week_label,
)
_MONTH = _Period(
    "monthly",
    lambda day: day.year * 12 + day.month - 1,
    lambda index: date(index // 12, index % 12 + 1, 1),
    lambda day: f"{day.year}-{day.month:02d}",
)


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def choose(backups: Iterable[Finished], policy: KeepPolicy, now: datetime) -> KeepPlan:
    """Split ``backups`` (one tenant's finished backups) into those to keep, each with
    its keep-until and reasons, and those to drop (see the module for the rules).
    Ties in ``finished_at`` go to the greater id."""
    newest_first = sorted(backups, key=lambda b: (b.finished_at, b.id), reverse=True)
    if not newest_first:
        return KeepPlan({}, ())
    # The first day a backup may still arrive: today, or a later day already backed up
    # (a clock running behind).
    start = max(_day(newest_first[0].finished_at), _day(now))
    reasons: dict[str, list[str]] = {}
    until: dict[str, date] = {}
    for period, count in ((_DAY, policy.daily), (_WEEK, policy.weekly), (_MONTH, policy.monthly)):
        for backup, rank in _newest_per_period(newest_first, period, count):
            day = _day(backup.finished_at)
            leaves = _leaving_day(period, period.index(day), rank, count, start, newest_first)
            reasons.setdefault(backup.id, []).append(f"{period.name} {period.label(day)}")
            until[backup.id] = max(until.get(backup.id, leaves), leaves)
    keep = {
        b.id: Keeper(b.id, _midnight(until[b.id] + timedelta(days=2)), tuple(reasons[b.id]))
        for b in newest_first
        if b.id in reasons
    }
    drop = tuple(b.id for b in reversed(newest_first) if b.id not in keep)
    return KeepPlan(keep, drop)


def _newest_per_period(
    newest_first: list[Finished], period: _Period, count: int
) -> list[tuple[Finished, int]]:
    """The newest backup of each of the ``count`` newest periods that have one, with
    the period's rank (0: the newest)."""
    chosen: list[tuple[Finished, int]] = []
    seen: set[int] = set()
    for backup in newest_first:
        if len(chosen) == count:
            break
        index = period.index(_day(backup.finished_at))
        if index not in seen:
            seen.add(index)
            chosen.append((backup, len(chosen)))
    return chosen


def _leaving_day(
    period: _Period, index: int, rank: int, count: int, start: date, newest_first: list[Finished]
) -> date:
    """The day on which the newest backup of period ``index`` (the ``rank``-th newest
    period with a backup) leaves this class if a backup arrives every day from
    ``start`` on: the day a newer backup of its own period arrives, or the first day
    of the ``count - rank``-th new period to get one."""
    first = period.index(start)
    if first == index:
        return start
    newest = period.index(_day(newest_first[0].finished_at))
    if first == newest:  # the period of ``start`` has its backup already: counted
        first += 1
    return max(period.first_day(first + count - rank - 1), start)
