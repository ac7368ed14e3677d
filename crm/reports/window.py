"""The report window: a UTC range [start, end), its zone, and local days computed in SQL.

Local days are computed in the database with a fixed UTC offset per query: ``local_day()``
compiles to ``date(ts, '+480 minutes')`` on SQLite and to
``to_char((ts AT TIME ZONE 'UTC') + INTERVAL '480 minutes', 'YYYY-MM-DD')`` on PostgreSQL,
both giving the same ``YYYY-MM-DD`` text. Asia/Shanghai has one offset all year; for a zone
with daylight saving time inside the range, the expression becomes a CASE over the offset
segments (found in Python from the zone's rules), so every row lands on its true local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, func, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from crm.core.errors import InputError

# Retention and conversion cohorts look back at least this many weeks from the report's end.
DEFAULT_COHORT_WEEKS = 8


@dataclass(frozen=True)
class ReportWindow:
    """What a report covers: [start, end) in UTC, the business zone, and the time it is read."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    now: datetime
    label: str
    cohort_weeks: int = DEFAULT_COHORT_WEEKS

    @property
    def as_of(self) -> datetime:
        """Cohort metrics count what happened up to this time (never beyond now)."""
        return self.now

    @property
    def cohort_start(self) -> datetime:
        """Start of the first cohort week: the Monday of min(start, end - cohort_weeks)."""
        earliest = min(self.start, self.end - timedelta(weeks=self.cohort_weeks))
        day = earliest.astimezone(self.zone).date()
        return local_midnight(day - timedelta(days=day.weekday()), self.zone)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the window."""
        return {
            "label": self.label,
            "first_day": self.start.astimezone(self.zone).date().isoformat(),
            "last_day": (self.end - timedelta(microseconds=1))
            .astimezone(self.zone)
            .date()
            .isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.zone.key,
            "as_of": self.now.isoformat(),
            "cohort_start": self.cohort_start.isoformat(),
        }


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day starts."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def as_zone(tz: str | ZoneInfo) -> ZoneInfo:
    """A ZoneInfo from a name (InputError for unknown names)."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError) as exc:
        raise InputError("error.reports.zone_unknown", tz=tz) from exc


def to_utc(value: datetime | date, zone: ZoneInfo) -> datetime:
    """A report bound as aware UTC: a date means that local day's midnight."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError("error.reports.naive_datetime", value=value.isoformat())
        return value.astimezone(UTC)
    return local_midnight(value, zone)


def make_window(
    start: datetime | date,
    end: datetime | date,
    *,
    tz: str | ZoneInfo = "Asia/Shanghai",
    now: datetime | None = None,
    label: str | None = None,
    cohort_weeks: int = DEFAULT_COHORT_WEEKS,
) -> ReportWindow:
    """Validate and build a window; dates are local days in ``tz``."""
    zone = as_zone(tz)
    s, e = to_utc(start, zone), to_utc(end, zone)
    if e <= s:
        raise InputError("error.reports.range_empty", start=s.isoformat(), end=e.isoformat())
    if cohort_weeks < 1:
        raise InputError("error.reports.cohort_weeks")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if label is None:
        first = s.astimezone(zone).date()
        last = (e - timedelta(microseconds=1)).astimezone(zone).date()
        label = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    return ReportWindow(s, e, zone, moment, label, cohort_weeks)


# --- local days in SQL ---------------------------------------------------------------------


class shifted_day(FunctionElement[str]):
    """The ``YYYY-MM-DD`` day of a UTC timestamp shifted by a whole number of minutes."""

    type = String()
    name = "shifted_day"
    inherit_cache = True


def _minutes(element: shifted_day) -> int:
    return int(str(list(element.clauses)[1]))


@compiles(shifted_day, "sqlite")
def _shifted_day_sqlite(element: shifted_day, compiler: Any, **kw: Any) -> str:
    col = compiler.process(next(iter(element.clauses)), **kw)
    return f"date({col}, '{_minutes(element):+d} minutes')"


@compiles(shifted_day, "postgresql")
def _shifted_day_pg(element: shifted_day, compiler: Any, **kw: Any) -> str:
    col = compiler.process(next(iter(element.clauses)), **kw)
    return (
        f"to_char(({col} AT TIME ZONE 'UTC') + INTERVAL '{_minutes(element)} minutes', "
        "'YYYY-MM-DD')"
    )


def _offset_minutes(zone: ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """(segment end, offset minutes) pairs covering [start, end); the last ends at ``end``."""
    segments: list[tuple[datetime, int]] = []
    current = _offset_minutes(zone, start)
    probe = start
    step = timedelta(hours=1)
    while probe < end:
        nxt = min(probe + step, end)
        off = _offset_minutes(zone, nxt) if nxt < end else current
        if off != current:
            # Narrow the change down to the minute: transitions happen on whole minutes.
            lo, hi = probe, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if _offset_minutes(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            segments.append((hi, current))
            current = off
        probe = nxt
    segments.append((end, current))
    return segments


def data_span(
    session: Session, col: Any, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """The part of [start, end) that holds values of ``col``: (start, start) when none does.

    A report over a century of days must cost what its rows cost, not what its range spans:
    the local-day arithmetic below walks the span it is given.
    """
    lo, hi = session.execute(
        select(func.min(col), func.max(col)).where(col >= start, col < end)
    ).one()
    if lo is None or hi is None:
        return start, start
    return max(start, lo), min(end, hi + timedelta(microseconds=1))


def local_day(col: Any, window: ReportWindow, start: datetime, end: datetime) -> ColumnElement[str]:
    """SQL for the local ``YYYY-MM-DD`` day of a UTC column whose values lie in [start, end)."""
    segments = offset_segments(window.zone, start, end)
    if len(segments) == 1:
        return shifted_day(col, literal_column(str(segments[0][1])))
    whens = [
        (col < until, shifted_day(col, literal_column(str(minutes))))
        for until, minutes in segments[:-1]
    ]
    return case(*whens, else_=shifted_day(col, literal_column(str(segments[-1][1]))))


def week_of(day: str | date) -> str:
    """The Monday (ISO week start) of a local day, as ``YYYY-MM-DD``."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return (d - timedelta(days=d.weekday())).isoformat()
