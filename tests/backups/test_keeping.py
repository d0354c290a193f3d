"""The keep-policy, a pure function: properties over any set of backups (hypothesis),
and the calendar of two years of nightly backups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.backups.keeping import KeepPlan, KeepPolicy, choose
from dangan.settings import Settings


@dataclass(frozen=True)
class Backup:
    id: str
    kind: str
    finished_at: datetime


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def nightly(first: date, days: int, at: time = time(0, 45)) -> list[Backup]:
    return [
        Backup(f"d{day:%Y%m%d}", "scheduled", datetime.combine(day, at, tzinfo=UTC))
        for day in (first + timedelta(days=n) for n in range(days))
    ]


def manual(at: datetime) -> Backup:
    return Backup(f"m{at:%Y%m%dT%H%M}", "manual", at)


moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)
policies = st.builds(
    KeepPolicy,
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=13),
)


@st.composite
def backup_sets(draw: st.DrawFn) -> list[Backup]:
    stamps = draw(st.lists(moments, max_size=40))
    kinds = draw(st.lists(st.sampled_from(["scheduled", "manual"]), min_size=len(stamps)))
    return [
        Backup(f"b{n:03d}", kind, at)
        for n, (at, kind) in enumerate(zip(stamps, kinds, strict=False))
    ]


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Backup], KeepPolicy, datetime]:
    backups = draw(backup_sets())
    newest = max((b.finished_at for b in backups), default=datetime(2025, 1, 1, tzinfo=UTC))
    # Runs come after the newest backup, or a little before it (a clock behind).
    now = newest + draw(st.timedeltas(min_value=timedelta(hours=-6), max_value=timedelta(days=90)))
    return backups, draw(policies), now


def newest_per(backups: list[Backup], period: str) -> dict[object, Backup]:
    def key(b: Backup) -> object:
        day = _day(b.finished_at)
        if period == "daily":
            return day
        if period == "weekly":
            return day.isocalendar()[:2]
        return (day.year, day.month)

    newest: dict[object, Backup] = {}
    for b in sorted(backups, key=lambda b: (b.finished_at, b.id)):
        newest[key(b)] = b
    return newest


def by_class(plan: KeepPlan, period: str) -> list[str]:
    return [k.id for k in plan.keep.values() if any(r.startswith(period) for r in k.reasons)]


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_newest_backup_is_always_kept(case: tuple[list[Backup], KeepPolicy, datetime]) -> None:
    backups, policy, now = case
    plan = choose(backups, policy, now)
    assert set(plan.keep) | set(plan.drop) == {b.id for b in backups}
    assert not set(plan.keep) & set(plan.drop)
    if backups:
        newest = max(backups, key=lambda b: (b.finished_at, b.id))
        assert newest.id in plan.keep
        # Nothing newer than the newest daily (the newest backup) is dropped.
        assert next(iter(plan.keep)) == newest.id
        assert "daily" in plan.keep[newest.id].reasons[0]


@settings(max_examples=300, deadline=None)
@given(cases())
def test_each_class_keeps_the_newest_of_its_n_newest_periods(
    case: tuple[list[Backup], KeepPolicy, datetime],
) -> None:
    backups, policy, now = case
    plan = choose(backups, policy, now)
    for period, count in (
        ("daily", policy.daily),
        ("weekly", policy.weekly),
        ("monthly", policy.monthly),
    ):
        newest = newest_per(backups, period)
        wanted = [newest[key].id for key in sorted(newest, reverse=True)[:count]]  # type: ignore[type-var]
        assert sorted(by_class(plan, period)) == sorted(wanted)
        assert len(by_class(plan, period)) <= count
    # Kept for a reason, or not at all.
    assert all(keeper.reasons for keeper in plan.keep.values())


@settings(max_examples=300, deadline=None)
@given(cases(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
def test_what_is_kept_is_a_fixed_point_when_nothing_new_arrives(
    case: tuple[list[Backup], KeepPolicy, datetime], later: timedelta
) -> None:
    backups, policy, now = case
    plan = choose(backups, policy, now)
    kept = [b for b in backups if b.id in plan.keep]

    again = choose(kept, policy, now)
    assert again.drop == ()
    assert again.keep == plan.keep  # the same reasons and keep-until dates

    # Days, months without a backup take nothing away: no later run drops more.
    assert choose(kept, policy, now + later).drop == ()
    assert set(choose(backups, policy, now + later).keep) == set(plan.keep)


@settings(max_examples=300, deadline=None)
@given(cases(), st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60))))
def test_a_dropped_backup_is_never_wanted_again(
    case: tuple[list[Backup], KeepPolicy, datetime], gaps: list[timedelta]
) -> None:
    backups, policy, now = case
    dropped = set(choose(backups, policy, now).drop)
    at = max((b.finished_at for b in backups), default=now)
    newer = []
    for n, gap in enumerate(gaps):
        at += gap
        newer.append(Backup(f"n{n:03d}", "manual", at))
        later = choose(backups + newer, policy, max(now, at))
        assert dropped <= set(later.drop)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_every_keep_until_is_a_midnight_after_the_next_run(
    case: tuple[list[Backup], KeepPolicy, datetime],
) -> None:
    backups, policy, now = case
    for keeper in choose(backups, policy, now).keep.values():
        assert keeper.until == _midnight(_day(keeper.until))
        # Locked through tomorrow: the next nightly run finds it locked and extends it.
        assert keeper.until >= _midnight(_day(now) + timedelta(days=2))


DAYS = 70
minutes_of_the_day = st.lists(
    st.integers(min_value=0, max_value=24 * 60 - 1), min_size=DAYS, max_size=DAYS
)


@settings(max_examples=40, deadline=None)
@given(
    policies,
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 6, 30)),
    minutes_of_the_day,
    minutes_of_the_day,
)
def test_under_nightly_backups_keep_until_dates_do_not_move(
    policy: KeepPolicy, first: date, backup_minutes: list[int], run_minutes: list[int]
) -> None:
    """A backup a day and a run a day, each at any time: once a backup's day is over,
    its keep-until is the same at every run, and it is the end of the day after the
    one on which it left the policy (the day of the backup that replaced it)."""
    kept: list[Backup] = []
    untils: dict[str, set[datetime]] = {}
    for n in range(DAYS):
        day = _midnight(first + timedelta(days=n))
        backup = Backup(f"d{n:03d}", "scheduled", day + timedelta(minutes=backup_minutes[n]))
        run = day + timedelta(minutes=run_minutes[n])
        seen = [*kept, backup] if backup.finished_at <= run else kept
        plan = choose(seen, policy, run)
        for keeper in plan.keep.values():
            if keeper.id != backup.id:
                untils.setdefault(keeper.id, set()).add(keeper.until)
        for dropped in plan.drop:
            left = _leaving_day(seen, dropped, policy, run)
            assert untils.get(dropped, set()) <= {_midnight(left + timedelta(days=2))}
        kept = [b for b in seen if b.id in plan.keep]
        if backup not in seen:
            kept.append(backup)


def _leaving_day(seen: list[Backup], backup: str, policy: KeepPolicy, now: datetime) -> date:
    """The day of the first backup whose arrival made the policy drop ``backup``."""
    for end in range(len(seen)):
        if backup in choose(seen[: end + 1], policy, now).drop:
            return _day(seen[end].finished_at)
    raise AssertionError(f"{backup} is kept")


def test_two_years_of_nightly_backups() -> None:
    plan = choose(
        nightly(date(2025, 1, 1), 730),
        KeepPolicy(7, 4, 12),
        datetime(2026, 12, 31, 3, 30, tzinfo=UTC),
    )
    assert plan.keep["d20261231"].reasons == (
        "daily 2026-12-31",
        "weekly 2026-W53",
        "monthly 2026-12",
    )
    assert [k.id for k in plan.keep.values()] == [
        *(f"d202612{d}" for d in (31, 30, 29, 28, 27, 26, 25)),
        "d20261220",  # weekly 2026-W51
        "d20261213",  # weekly 2026-W50
        *(f"d2026{m:02d}{_last_day(2026, m):02d}" for m in range(11, 0, -1)),
    ]
    assert plan.keep["d20261227"].reasons == ("daily 2026-12-27", "weekly 2026-W52")
    assert len(plan.drop) == 730 - 20
    # Keep-until: the end of the day after the one it would leave the policy on.
    assert plan.keep["d20261225"].until == datetime(2027, 1, 3, tzinfo=UTC)  # leaves 01-01
    assert plan.keep["d20261213"].until == datetime(2027, 1, 6, tzinfo=UTC)  # leaves 01-04
    assert plan.keep["d20260131"].until == datetime(2027, 1, 3, tzinfo=UTC)  # leaves 01-01
    assert plan.keep["d20261130"].until == datetime(2027, 11, 3, tzinfo=UTC)
    # Today's backup is provisional: another may come today.
    assert plan.keep["d20261231"].until == datetime(2027, 1, 2, tzinfo=UTC)


def _last_day(year: int, month: int) -> int:
    return ((date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)).day


def test_a_manual_backup_counts_like_any_other_for_its_day() -> None:
    backups = nightly(date(2026, 11, 20), 4)  # 20–23 November, 00:45
    afternoon = manual(datetime(2026, 11, 22, 15, 10, tzinfo=UTC))
    plan = choose(
        [*backups, afternoon], KeepPolicy(7, 4, 12), datetime(2026, 11, 23, 3, tzinfo=UTC)
    )

    # A Sunday: the newest of its day, and of its ISO week.
    assert plan.keep[afternoon.id].reasons == ("daily 2026-11-22", "weekly 2026-W47")
    assert plan.drop == ("d20261122",)  # the nightly one of that day


def test_backups_that_stop_never_run_out() -> None:
    backups = nightly(date(2026, 9, 1), 30)
    policy = KeepPolicy(7, 4, 12)
    first = choose(backups, policy, datetime(2026, 10, 1, tzinfo=UTC))
    half_a_year = choose(backups, policy, datetime(2027, 4, 1, tzinfo=UTC))

    # 24–30 September, and the Sundays of the two weeks before.
    assert set(first.keep) == {f"d202609{d}" for d in (13, 20, 24, 25, 26, 27, 28, 29, 30)}
    assert set(half_a_year.keep) == set(first.keep)
    # The oldest daily, locked a little longer at each run as long as it is kept.
    daily = "d20260924"
    assert first.keep[daily].until == datetime(2026, 10, 3, tzinfo=UTC)
    assert half_a_year.keep[daily].until == datetime(2027, 4, 3, tzinfo=UTC)


def test_weeks_are_iso_weeks_across_the_new_year() -> None:
    thursday = Backup("d20261231", "scheduled", datetime(2026, 12, 31, 1, tzinfo=UTC))
    sunday = Backup("d20270103", "scheduled", datetime(2027, 1, 3, 1, tzinfo=UTC))
    plan = choose([thursday, sunday], KeepPolicy(1, 2, 2), datetime(2027, 1, 4, tzinfo=UTC))

    assert plan.keep[sunday.id].reasons == (
        "daily 2027-01-03",
        "weekly 2026-W53",
        "monthly 2027-01",
    )
    assert plan.keep[thursday.id].reasons == ("monthly 2026-12",)


def test_the_default_policy_comes_from_the_settings() -> None:
    assert KeepPolicy.from_settings(Settings()) == KeepPolicy(7, 4, 12)
    assert KeepPolicy.from_settings(
        Settings(backup_keep_daily=3, backup_keep_weekly=0, backup_keep_monthly=24)
    ) == KeepPolicy(3, 0, 24)
    assert choose([], KeepPolicy(), datetime.now(UTC)) == KeepPlan({}, ())
